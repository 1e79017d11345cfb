// Pins issue 8 §4 "the transport registry is wired at the top": api/ no longer imports sim/ or replay/
// (test/unit/architecture.test.ts checks import() too); the package entry registers both, each loaded
// on first use, so `Adapter.open({ transport: 'sim' | 'replay:…' })` behaves for users of the entry as
// it did before.
import { describe, expect, test } from 'vitest';
import { Adapter, TransportError } from '../../../src/index.js';
import { transportForms } from '../../../src/transport/open.js';

describe('transports wired by the package entry', () => {
  test('sim and replay are registered (not "not loaded")', () => {
    const forms = transportForms();
    expect(forms).toContain('sim[:scenario]');
    expect(forms).toContain('replay:file');
    expect(forms.filter(f => f.includes('not loaded'))).toEqual([]);
  });

  test("Adapter.open({ transport: 'sim:demo' }) opens the simulator on its virtual clock", async () => {
    const adapter = await Adapter.open({ transport: 'sim:demo' });
    expect(adapter.controller.address).toBe('C0:FF:EE:00:00:01');
    const ad = await adapter.find({ name: 'Pulse HR', timeout: 5000 });
    expect(ad?.address).toBe('D4:1E:35:7A:00:01');
    await adapter.close();
  });

  test("Adapter.open({ transport: 'replay:…' }) reaches the replay transport", async () => {
    const e = await Adapter.open({ transport: 'replay:/nonexistent/capture.btsnoop' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('ETRANSPORT_CONNECT');
    expect((e as Error).message).toMatch(/^replay: cannot read \/nonexistent\/capture\.btsnoop/);
  });
});
