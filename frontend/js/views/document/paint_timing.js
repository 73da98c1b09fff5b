// How long an input takes to reach the screen: from the input event to the second animation frame
// after it (the first frame's callbacks run before its paint; the second's run once it is on screen).
// Each measure is a performance entry, for the browser's tools and the browser tests:
// performance.getEntriesByName("scrubber-step") or ("gamma-recolour").

/** Measure `name` from `start` (an event's timeStamp) to the frame after the next paint. */
export function afterPaint(name, start) {
  requestAnimationFrame(() => requestAnimationFrame(() => {
    const painted = performance.mark(`${name}:painted`);
    performance.measure(name, { start, end: painted.startTime });
  }));
}
