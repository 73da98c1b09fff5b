// The text's tooltip and keyboard: a token's numbers on hover or keyboard focus, one tab stop for the
// whole text (roving tabindex) with the arrow keys, Home and End moving between tokens, Escape hiding
// the tooltip, the tooltip following its token when the page scrolls, and a click (or Enter) picking
// a token for a closer look.

const tokenOf = (target) => (target instanceof Element ? target.closest(".tok") : null);

/**
 * Wire `text` (from documentText) to `tooltip`; `gamma()` is the current focal γ. Returns
 * {focusToken(index), refresh() (redraw the shown token's numbers, e.g. after γ moved),
 * onPick(fn) (fn(index) when a token is clicked or Enter is pressed on it), showStep(at) (the
 * tooltip's numbers from another checkpoint, {step, source}; null: this run's)}.
 */
export function tokenInteraction(ctx, text, data, tooltip, gamma) {
  let at = null;
  const showToken = (span) => {
    const i = Number(span.dataset.index);
    tooltip.show(span, data, i, { gamma: gamma(), continuation: text.continuation[i], spanText: text.spanText(i), at });
  };
  const focusToken = (i) => {
    const span = text.spans[Math.max(0, Math.min(data.n_tokens - 1, i))];
    if (span) { span.focus(); span.scrollIntoView({ block: "nearest" }); }
  };
  const picked = [];
  const pick = (span) => picked.forEach((fn) => fn(Number(span.dataset.index)));
  hoverAndFocus(text.el, tooltip, showToken);
  arrowKeys(text.el, tooltip, data.n_tokens, focusToken, pick);
  text.el.addEventListener("click", (e) => { const span = tokenOf(e.target); if (span) pick(span); });
  const refresh = () => { if (tooltip.index !== null) showToken(text.spans[tooltip.index]); };
  const onScroll = () => { if (tooltip.index !== null) tooltip.place(text.spans[tooltip.index]); };
  window.addEventListener("scroll", onScroll, { passive: true });
  ctx.onDispose(() => window.removeEventListener("scroll", onScroll));
  return {
    focusToken,
    refresh,
    onPick: (fn) => picked.push(fn),
    showStep: (next) => { at = next; refresh(); },
  };
}

function hoverAndFocus(textEl, tooltip, showToken) {
  textEl.addEventListener("mouseover", (e) => { const span = tokenOf(e.target); if (span) showToken(span); });
  textEl.addEventListener("mouseleave", () => {
    // Back to the focused token, if the keyboard left one, rather than no tooltip at all.
    const focused = tokenOf(document.activeElement);
    if (focused && textEl.contains(focused)) showToken(focused); else tooltip.hide();
  });
  textEl.addEventListener("focusin", (e) => {
    const span = tokenOf(e.target);
    if (!span) return;
    for (const s of textEl.querySelectorAll('.tok[tabindex="0"]')) s.tabIndex = -1;
    span.tabIndex = 0;
    span.setAttribute("aria-describedby", tooltip.id);
    showToken(span);
  });
  textEl.addEventListener("focusout", (e) => {
    const span = tokenOf(e.target);
    if (span) span.removeAttribute("aria-describedby");
    if (!textEl.contains(e.relatedTarget)) tooltip.hide();
  });
}

function arrowKeys(textEl, tooltip, nTokens, focusToken, pick) {
  textEl.addEventListener("keydown", (e) => {
    const span = tokenOf(e.target);
    if (!span) return;
    const i = Number(span.dataset.index);
    const moves = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: nTokens - 1 };
    if (e.key in moves) { e.preventDefault(); focusToken(moves[e.key]); } else if (e.key === "Escape") tooltip.hide();
    else if (e.key === "Enter") pick(span);
  });
}
