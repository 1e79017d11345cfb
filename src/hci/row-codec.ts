/**
 * Moved to src/codec/compile.ts (one place for compiled row readers, with a no-eval fallback);
 * re-exported here for existing imports.
 */
export { compileRow, compiledStruct, type RowReader } from '../codec/compile.js';
