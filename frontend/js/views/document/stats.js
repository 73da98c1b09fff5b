// The document's key figures at the current focal γ, computed in the browser from its token arrays.

import { statGrid } from "../../components.js";
import { fmtInt, fmtNum, fmtPct } from "../../format.js";
import { focalWeight } from "../../tokens.js";

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export function documentStats(data, gamma) {
  const n = data.n_tokens;
  const meanLoss = n ? sum(data.loss) / n : NaN;
  const weights = data.logprob.map((lp) => focalWeight(lp, gamma));
  const sw = sum(weights);
  const sw2 = sum(weights.map((w) => w * w));
  return statGrid([
    { label: "Tokens", value: fmtInt(n) },
    { label: "Mean loss", value: fmtNum(meanLoss, 3), hint: "nats per token" },
    { label: "Perplexity", value: fmtNum(Math.exp(meanLoss), Math.exp(meanLoss) >= 100 ? 0 : 2) },
    { label: "Max loss", value: fmtNum(n ? data.loss.reduce((a, b) => (b > a ? b : a), -Infinity) : NaN, 2) },
    { label: "Top-1 accuracy", value: fmtPct(n ? data.rank.filter((r) => r === 0).length / n : NaN), hint: "share of tokens ranked first" },
    { label: "Mean entropy", value: fmtNum(n ? sum(data.entropy) / n : NaN, 3), hint: "nats" },
    { label: `Effective tokens (γ=${gamma})`, value: fmtPct(sw2 > 0 ? (sw * sw) / sw2 / n : NaN), hint: "(Σw)² / Σw² as a share of tokens" },
  ], { testid: "document-stats" });
}
