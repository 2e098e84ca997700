import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import { DgramSocket } from 'node-unix-socket';
import { AddressInUseError } from '../../src/errors/errors';
import { claimUnixPath, identityOf, prepareUnixPath, removeUnixPath } from '../../src/transports/unix-path';

const WAIT_MS = 5000;

function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts a node process that binds `path` (stream or datagram), then SIGKILLs it: the file stays, stale. */
async function leaveStaleSocketBehind(kind: 'stream' | 'datagram', path: string): Promise<void> {
  const script =
    kind === 'stream'
      ? `require('net').createServer().listen(process.argv[1], () => console.log('up'));`
      : `const s = new (require('node-unix-socket').DgramSocket)(); s.bind(process.argv[1]); console.log('up');`;
  const child = spawn(process.execPath, ['-e', script, path], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await within(new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the ${kind} child exited early with code ${code}`)));
    }), `the ${kind} child to bind`);
  } finally {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await within(exited, `the ${kind} child to die`);
  }
}

describe('prepareUnixPath and removeUnixPath', () => {
  let dir: string;
  const cleanups: Array<() => unknown> = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/sockserve-');
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The pid of a node process started now, alive until the test ends. */
  async function liveProcess(): Promise<number> {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000)'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(() => {
      child.kill('SIGKILL');
      return within(exited, 'the live process to end');
    });
    await within(new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject)), 'the live process to start');
    return child.pid!;
  }

  function listenStream(path: string): Promise<net.Server> {
    // The liveness probe connects and hangs up at once, so the server side may see ECONNRESET.
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.end('pong');
    });
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return within(new Promise<net.Server>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve(server));
    }), 'the stream server to listen');
  }

  it('does nothing when no file exists at the path', async () => {
    const path = `${dir}/none.sock`;
    await expect(prepareUnixPath(path, 'UnixStreamServer')).resolves.toBeUndefined();
    expect(fs.existsSync(path)).toBe(false);
  });

  it('checks and removes a stale file one process at a time: while another holds the path\'s lock it waits, then finds what that one left', async () => {
    // Before (hostile runs): servers starting together each found the file stale, and a later one removed the
    // live socket an earlier one had bound since, leaving it listening on a file that no longer existed.
    const path = `${dir}/raced.sock`;
    await leaveStaleSocketBehind('stream', path);
    const lock = `${path}.sockserve-lock`;
    fs.writeFileSync(lock, String(await liveProcess())); // another server (alive, started before its lock) is checking the path
    let settled = false;
    const preparing = prepareUnixPath(path, 'UnixStreamServer').then(() => (settled = true), (err) => { settled = true; throw err; });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false); // it waits for the lock ...
    expect(fs.lstatSync(path).isSocket()).toBe(true); // ... and has not touched the file
    // The other server removed the stale file and bound its own, then released the lock: this one is refused.
    fs.unlinkSync(path);
    await listenStream(path);
    fs.unlinkSync(lock);
    await expect(within(preparing, 'the check after the lock')).rejects.toBeInstanceOf(AddressInUseError);
    expect(fs.readdirSync(dir)).toEqual(['raced.sock']); // the live socket kept, no lock left
  });

  it('takes over a lock left by a process that died holding it', async () => {
    const path = `${dir}/orphan-lock.sock`;
    await leaveStaleSocketBehind('stream', path);
    const dead = spawn(process.execPath, ['-e', '0']);
    const pid = dead.pid!;
    await new Promise((r) => dead.once('exit', r));
    fs.writeFileSync(`${path}.sockserve-lock`, String(pid));
    await within(prepareUnixPath(path, 'UnixStreamServer'), 'the stale lock to be taken over');
    expect(fs.readdirSync(dir)).toEqual([]); // the stale socket removed, and the lock too
  });

  it('takes over a lock that names this process when this process holds no such lock (a container\'s server is pid 1 at every start)', async () => {
    const path = `${dir}/own-pid-lock.sock`;
    await leaveStaleSocketBehind('stream', path);
    // Left by an earlier process with this pid, killed while it held the lock. Before: the start waited 5 s and
    // failed with "another process (pid <its own>) has held the Unix socket path", and so did every restart.
    const lock = `${path}.sockserve-lock`;
    fs.writeFileSync(lock, String(process.pid));
    const old = new Date(Date.now() - process.uptime() * 1000 - 5000);
    fs.utimesSync(lock, old, old); // written before this process started
    await within(prepareUnixPath(path, 'UnixStreamServer'), 'the lock left under this pid to be taken over', 3000);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('takes over a lock whose pid now belongs to a process started after the lock was written (a reused pid)', async () => {
    const path = `${dir}/reused-pid-lock.sock`;
    await leaveStaleSocketBehind('stream', path);
    const lock = `${path}.sockserve-lock`;
    fs.writeFileSync(lock, String(await liveProcess())); // the process is alive, and started a moment ago ...
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old); // ... a minute after the lock was written: it cannot be the lock's maker
    await within(prepareUnixPath(path, 'UnixStreamServer'), 'the lock of a reused pid to be taken over', 3000);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('waits for a lock of this process\'s own while it holds it: a second server of the process on the path waits for the first, then finds its socket', async () => {
    const path = `${dir}/same-process.sock`;
    const release = await within(claimUnixPath(path, 'UnixStreamServer'), 'the first claim'); // holds the lock until it listens
    await leaveStaleSocketBehind('stream', path); // a file at the path: the second server needs the lock to check it
    let settled = false;
    const preparing = prepareUnixPath(path, 'UnixStreamServer').then(() => (settled = true), (err) => { settled = true; throw err; });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false); // the lock names this process, which holds it: waited for, not taken over
    fs.unlinkSync(path);
    await listenStream(path);
    await release();
    await expect(within(preparing, 'the check after the lock')).rejects.toBeInstanceOf(AddressInUseError);
  });

  it('is taken over by one contender at a time: two that find one abandoned lock at once never both hold the path', async () => {
    // Before (hostile re-check: 3 rounds of 14 with 8 processes): each judged the file abandoned and unlinked
    // "it", the later one the lock the earlier had made since, and both held the path. A slow unlink (a busy disk)
    // opens that window every time.
    const path = `${dir}/raced-takeover.sock`;
    const lock = `${path}.sockserve-lock`;
    const dead = spawn(process.execPath, ['-e', '0']);
    const pid = dead.pid!;
    await new Promise((r) => dead.once('exit', r));
    fs.writeFileSync(lock, String(pid));
    const unlink = fs.promises.unlink;
    const slow = jest.spyOn(fs.promises, 'unlink').mockImplementation(async (p) => {
      await new Promise((r) => setTimeout(r, 50));
      return unlink(p);
    });
    cleanups.push(() => slow.mockRestore());
    const held: string[] = [];
    const claim = async (who: string) => {
      const release = await claimUnixPath(path, 'UnixStreamServer');
      held.push(`${who} takes`);
      await new Promise((r) => setTimeout(r, 200));
      held.push(`${who} releases`);
      await release();
    };
    await within(Promise.all([claim('first'), new Promise((r) => setTimeout(r, 5)).then(() => claim('second'))]), 'both claims', 4000);
    expect(held.map((h) => h.split(' ')[1])).toEqual(['takes', 'releases', 'takes', 'releases']); // never two at once
    expect(fs.readdirSync(dir)).toEqual([]); // no lock and no takeover file left
  });

  it('takes over a lock that names no process (its maker killed between creating and writing it) once it is a second old', async () => {
    const path = `${dir}/unnamed-lock.sock`;
    await leaveStaleSocketBehind('stream', path);
    const lock = `${path}.sockserve-lock`;
    fs.writeFileSync(lock, '');
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(lock, old, old);
    // Before: it waited 5 s and failed with "another process has been checking", and so did every later start.
    await within(prepareUnixPath(path, 'UnixStreamServer'), 'the unnamed lock to be taken over', 3000);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('waits for a fresh lock that names no process yet (its maker is about to write its pid)', async () => {
    const path = `${dir}/fresh-lock.sock`;
    await leaveStaleSocketBehind('stream', path);
    const lock = `${path}.sockserve-lock`;
    fs.writeFileSync(lock, '');
    let settled = false;
    const preparing = prepareUnixPath(path, 'UnixStreamServer').finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    fs.unlinkSync(lock);
    await within(preparing, 'the check after the lock');
  });

  it('removes a stale stream socket left by a killed process, so a new server can bind there', async () => {
    const path = `${dir}/stale-stream.sock`;
    await leaveStaleSocketBehind('stream', path);
    expect(fs.lstatSync(path).isSocket()).toBe(true);

    await prepareUnixPath(path, 'UnixStreamServer');

    expect(fs.existsSync(path)).toBe(false);
    await listenStream(path);
  });

  it('removes a stale datagram socket left by a killed process', async () => {
    const path = `${dir}/stale-dgram-killed.sock`;
    await leaveStaleSocketBehind('datagram', path);
    expect(fs.lstatSync(path).isSocket()).toBe(true);

    await prepareUnixPath(path, 'UnixDatagramServer');

    expect(fs.existsSync(path)).toBe(false);
  });

  it('removes the stale socket file that node-unix-socket leaves behind after close()', async () => {
    const path = `${dir}/stale-dgram-closed.sock`;
    const socket = new DgramSocket();
    socket.bind(path);
    socket.close();
    expect(fs.lstatSync(path).isSocket()).toBe(true);

    await prepareUnixPath(path, 'UnixDatagramServer');

    expect(fs.existsSync(path)).toBe(false);
  });

  it('refuses a regular file with AddressInUseError and leaves the file and its content alone', async () => {
    const path = `${dir}/precious.txt`;
    fs.writeFileSync(path, 'do not delete me');

    const failure = prepareUnixPath(path, 'UnixStreamServer');

    await expect(failure).rejects.toBeInstanceOf(AddressInUseError);
    await expect(failure).rejects.toThrow(/UnixStreamServer.*precious\.txt.*regular file.*Fix:/);
    expect(fs.readFileSync(path, 'utf8')).toBe('do not delete me');
  });

  it('refuses a directory with AddressInUseError and leaves it in place', async () => {
    const path = `${dir}/a-directory`;
    fs.mkdirSync(path);

    await expect(prepareUnixPath(path, 'UnixStreamServer')).rejects.toThrow(/directory/);
    expect(fs.statSync(path).isDirectory()).toBe(true);
  });

  it('refuses the path of a live stream server, and that server keeps working', async () => {
    const path = `${dir}/live-stream.sock`;
    await listenStream(path);

    const failure = prepareUnixPath(path, 'UnixStreamServer');

    await expect(failure).rejects.toBeInstanceOf(AddressInUseError);
    await expect(failure).rejects.toThrow(/UnixStreamServer.*live-stream\.sock.*live socket.*Fix:/);
    const reply = await within(new Promise<string>((resolve, reject) => {
      let got = '';
      const client = net.connect(path);
      client.on('data', (chunk) => (got += chunk.toString()));
      client.on('end', () => resolve(got));
      client.on('error', reject);
    }), 'the live server to answer');
    expect(reply).toBe('pong');
  });

  it('refuses the path of a live datagram socket (the stream probe sees EPROTOTYPE) and keeps its file', async () => {
    const path = `${dir}/live-dgram.sock`;
    const socket = new DgramSocket();
    cleanups.push(() => socket.close());
    socket.bind(path);

    const failure = prepareUnixPath(path, 'UnixDatagramServer');

    await expect(failure).rejects.toBeInstanceOf(AddressInUseError);
    await expect(failure).rejects.toThrow(/UnixDatagramServer.*live-dgram\.sock/);
    expect(fs.lstatSync(path).isSocket()).toBe(true);
  });

  it('removeUnixPath removes the socket file it created and tolerates a path that does not exist', async () => {
    const path = `${dir}/gone.sock`;
    const socket = new DgramSocket();
    socket.bind(path);
    const created = await identityOf(path);
    socket.close();

    await removeUnixPath(path, created);
    expect(fs.existsSync(path)).toBe(false);
    await expect(removeUnixPath(path, created)).resolves.toBeUndefined();
  });

  it('removeUnixPath leaves another socket file at the same path alone', async () => {
    const path = `${dir}/replaced.sock`;
    const first = new DgramSocket();
    first.bind(path);
    const created = await identityOf(path);
    first.close();
    fs.unlinkSync(path);
    const second = new DgramSocket();
    second.bind(path);
    try {
      await removeUnixPath(path, created);
      expect(fs.lstatSync(path).isSocket()).toBe(true);
    } finally {
      second.close();
    }
  });

  it('removeUnixPath leaves a regular file alone', async () => {
    const path = `${dir}/not-a-socket.txt`;
    fs.writeFileSync(path, 'content');

    await removeUnixPath(path, await identityOf(path));

    expect(fs.readFileSync(path, 'utf8')).toBe('content');
  });
});
