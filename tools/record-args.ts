/**
 * Command line of the recording tools (tools/record.ts, tools/interop/record-btvirt.ts):
 * `<name> --key value …`, the name being kebab-case because it becomes the scenario's folder.
 */
export function parseRecordArgs(argv: string[], usage: (msg?: string) => never): { name: string; opts: Record<string, string> } {
  const rest = [...argv];
  const name = rest.shift();
  if (!name || name.startsWith('--')) usage('a scenario name is needed');
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) usage('the name is kebab-case (it becomes the folder name)');
  const opts: Record<string, string> = {};
  while (rest.length) {
    const k = rest.shift()!;
    const v = rest.shift();
    if (!k.startsWith('--') || v === undefined) usage(`bad argument ${k}`);
    opts[k.slice(2)] = v;
  }
  return { name, opts };
}
