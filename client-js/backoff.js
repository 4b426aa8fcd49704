/**
 * Full-jitter exponential backoff.
 *
 * Every reconnecting tab picks a uniformly random delay between zero and an exponentially growing
 * ceiling. Spreading the whole interval (rather than adding a little jitter to a fixed delay) is
 * what keeps a thousand tabs from reconnecting in the same instant after a server restart.
 *
 * @module backoff
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [baseMs] delay ceiling of the first attempt, in milliseconds (default 500)
 * @property {number} [capMs] largest ceiling any attempt can reach, in milliseconds (default 30000)
 */

/** Defaults used by the client when no backoff options are given. */
export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, capMs: 30_000 });

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry).
 *
 * Pure: the result depends only on the arguments, so it can be tested with a fixed `random`.
 *
 * @param {number} attempt how many attempts failed before this one; negative or non-finite counts as 0
 * @param {BackoffOptions} [options]
 * @param {() => number} [random] a source of numbers in [0, 1), `Math.random` by default
 * @returns {number} an integer number of milliseconds in [0, min(capMs, baseMs * 2 ** attempt)]
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const baseMs = nonNegative(options.baseMs ?? DEFAULT_BACKOFF.baseMs);
  const capMs = nonNegative(options.capMs ?? DEFAULT_BACKOFF.capMs);
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.floor(attempt) : 0;
  // 2 ** n overflows to Infinity for large n, which Math.min then clamps to the cap.
  const ceiling = Math.floor(Math.min(capMs, baseMs * 2 ** n));
  // A misbehaving random source must not push the delay outside the promised interval.
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  // floor(r * (ceiling + 1)) is uniform over 0..ceiling; min() covers r === 1.
  return Math.min(ceiling, Math.floor(r * (ceiling + 1)));
}

/**
 * @param {number} value
 * @returns {number}
 */
function nonNegative(value) {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
