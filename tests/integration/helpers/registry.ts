// A real registry for tests: Debian's docker-registry on 127.0.0.1 with a free port, images
// pushed with skopeo, htpasswd lines for Basic auth. Shared by the pull and engine CLI tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Registry {
  port: number;
  host: string;
  storage: string;
  proc: ChildProcess;
  log: string;
}

/** docker-registry on 127.0.0.1 and a free port, storage under `dir`; `auth` is a YAML `auth:` block. */
export async function startRegistry(dir: string, auth = ''): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const storage = join(dir, 'storage');
  const port = await freePort();
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString('hex')}
${auth}`,
  );
  const log = join(dir, 'registry.log');
  const fd = openSync(log, 'a');
  const proc = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const reg: Registry = { port, host: `127.0.0.1:${port}`, storage, proc, log };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return reg;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start on ${port}:\n${readFileSync(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stopRegistry(r: Registry): Promise<void> {
  if (r.proc.exitCode !== null || r.proc.pid === undefined) return;
  const exited = new Promise<void>((resolve) => r.proc.once('exit', () => resolve()));
  process.kill(r.proc.pid, 'SIGTERM');
  const t = setTimeout(() => r.proc.pid !== undefined && r.proc.exitCode === null && process.kill(r.proc.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** Async: the token server runs in this process, so a blocking spawnSync would deadlock it. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const t = setTimeout(() => p.pid !== undefined && process.kill(p.pid, 'SIGKILL'), 120_000);
    p.on('error', reject);
    p.on('close', (code, sig) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? sig}):\n${out}`));
    });
  });
}

export function push(layout: string, tag: string, dest: string, opts: { creds?: string; all?: boolean } = {}): Promise<string> {
  return run('skopeo', [
    'copy',
    '--quiet',
    ...(opts.all ? ['--all'] : []),
    '--dest-tls-verify=false',
    ...(opts.creds ? ['--dest-creds', opts.creds] : ['--dest-no-creds']),
    `oci:${layout}:${tag}`,
    `docker://${dest}`,
  ]);
}

/** Bcrypt htpasswd line: htpasswd(1) when installed, else perl's crypt(3) (libxcrypt $2b$). */
export function htpasswdLine(user: string, password: string): string {
  if (which('htpasswd')) return sh('htpasswd', ['-nbB', user, password]).trim();
  const abc = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = Array.from(randomBytes(22), (b) => abc[b % 64]).join('');
  const hash = sh('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]);
  if (!hash.startsWith('$2b$05$')) throw new Error(`this libc's crypt(3) has no bcrypt (got "${hash}"): install apache2-utils`);
  return `${user}:${hash}`;
}
