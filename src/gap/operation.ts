/**
 * @deprecated Moved to `src/operation.ts`, the one deadline / abort kit; this file only re-exports it
 * so modules written against the old path keep compiling. Import from '../operation.js'.
 */
export {
  abortedError, deadline, guarded, type Deadline, type DeadlineSpec, type OperationOptions,
} from '../operation.js';
