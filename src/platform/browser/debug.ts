/** debug's `createDebug` for a browser build (bundled; its browser variant logs to the console). Same export as ../debug.ts. */
import createDebug from 'debug';

export { createDebug };
