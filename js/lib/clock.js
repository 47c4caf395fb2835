// The page clock every timestamp sent to the kernel uses (ms since the epoch), and the mapping
// from an AudioContext's clock (s) to it.

/** Now on the page clock (ms since the epoch). */
export function pageNow() {
  return performance.timeOrigin + performance.now();
}

/** A context time (s) on the page clock: the context has rendered up to `currentTime` now. */
export function pageTimeOf(ctx, contextTime) {
  if (!ctx) return null;
  return pageNow() - Math.max(0, (ctx.currentTime - contextTime) * 1000);
}
