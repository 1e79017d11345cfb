/**
 * Throw-away X.509 material for the mqtts:// tests, made by Debian's `openssl` command (installed by
 * tools/interop/setup.sh) at test time in a private temporary directory and removed afterwards: a CA,
 * a broker certificate it signs (subjectAltName IP:127.0.0.1 and DNS:localhost, serverAuth), a client
 * certificate it signs (clientAuth), and a second, unrelated CA (the "wrong CA"); a broker certificate
 * from the same CA issued for another name only (DNS:broker.elsewhere.test: the host-name mismatch), and
 * the client key again, encrypted with a random passphrase (PKCS #8, AES-256-CBC, by `openssl pkey`).
 * P-256 keys, valid for one day. Nothing here is committed; no key outlives the test run.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestPki {
  dir: string;
  /** File paths. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of the above. */
  otherCa: string;
  /** A client certificate and key signed by the other CA (the broker must refuse it). */
  strangerCert: string;
  strangerKey: string;
  /** A broker certificate and key from the CA, for DNS:broker.elsewhere.test only (not 127.0.0.1, not localhost). */
  elsewhereCert: string;
  elsewhereKey: string;
  /** clientKey encrypted (PKCS #8, AES-256-CBC) with `passphrase`, written to `passphraseFile` (0600, with a trailing newline). */
  clientKeyEncrypted: string;
  passphrase: string;
  passphraseFile: string;
  read(path: string): string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('cannot run openssl (run tools/interop/setup.sh)');
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['req', '-x509', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=blewire test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

async function makeLeaf(dir: string, name: string, ca: string, ext: string): Promise<void> {
  writeFileSync(join(dir, `${name}.ext`), ext);
  await openssl(['req', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=blewire test ${name}`], dir);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`], dir);
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'blewire-pki-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeLeaf(dir, 'server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  await makeLeaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  await makeLeaf(dir, 'stranger', 'other-ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  await makeLeaf(dir, 'elsewhere', 'ca', 'subjectAltName=DNS:broker.elsewhere.test\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  const passphrase = randomBytes(12).toString('base64url');
  writeFileSync(join(dir, 'client-key.pass'), passphrase + '\n', { mode: 0o600 });
  await openssl(['pkey', '-in', 'client.key', '-aes256', '-passout', 'file:client-key.pass', '-out', 'client-enc.key'], dir);
  // Started as root, mosquitto may read its files after dropping to its own user: let it through to
  // the broker's certificate and key (this directory and its keys exist only for this run).
  chmodSync(dir, 0o711);
  for (const f of ['ca.crt', 'server.crt', 'server.key', 'elsewhere.crt', 'elsewhere.key']) chmodSync(join(dir, f), 0o644);
  const p = (f: string) => join(dir, f);
  return {
    dir, ca: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key'),
    otherCa: p('other-ca.crt'), strangerCert: p('stranger.crt'), strangerKey: p('stranger.key'),
    elsewhereCert: p('elsewhere.crt'), elsewhereKey: p('elsewhere.key'),
    clientKeyEncrypted: p('client-enc.key'), passphrase, passphraseFile: p('client-key.pass'),
    read: f => readFileSync(f, 'utf8'),
  };
}
