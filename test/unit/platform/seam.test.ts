// Pins the platform seam's portable pieces (src/platform): what each module promises a port must keep.
import { describe, expect, test } from 'vitest';
import { createAsyncContext, envVar, EventEmitter, macrotask } from '../../../src/platform/index.js';

describe('platform seam', () => {
  test('an async context follows awaits and timers inside run(), and is gone outside', async () => {
    const ctx = createAsyncContext<string>();
    expect(ctx.get()).toBeUndefined();
    const seen = await ctx.run('outer', async () => {
      await Promise.resolve();
      const a = ctx.get();
      const b = await new Promise(resolve => setTimeout(() => resolve(ctx.get()), 1));
      const c = await ctx.run('inner', async () => { await null; return ctx.get(); });
      return [a, b, c, ctx.get()];
    });
    expect(seen).toEqual(['outer', 'outer', 'inner', 'outer']);
    expect(ctx.get()).toBeUndefined();
  });

  test('macrotask runs after pending microtasks, in order', async () => {
    const order: string[] = [];
    await new Promise<void>(resolve => {
      macrotask(() => order.push('task 1'));
      macrotask(() => { order.push('task 2'); resolve(); });
      void Promise.resolve().then(() => order.push('microtask'));
    });
    expect(order).toEqual(['microtask', 'task 1', 'task 2']);
  });

  test('envVar reads the environment, undefined when unset', () => {
    process.env['BLEWIRE_SEAM_TEST'] = 'x';
    expect(envVar('BLEWIRE_SEAM_TEST')).toBe('x');
    delete process.env['BLEWIRE_SEAM_TEST'];
    expect(envVar('BLEWIRE_SEAM_TEST')).toBeUndefined();
  });

  test('the EventEmitter offers the subset Adapter and Connection rely on', () => {
    const e = new EventEmitter<{ x: [number] }>();
    const got: number[] = [];
    const on = (n: number): void => { got.push(n); };
    e.on('x', on);
    e.once('x', n => got.push(n * 10));
    e.emit('x', 1);
    e.emit('x', 2);
    expect(e.listenerCount('x')).toBe(1);
    e.off('x', on);
    e.emit('x', 3);
    expect(got).toEqual([1, 10, 2]);
  });
});
