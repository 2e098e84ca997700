/**
 * The filesystem side of Unix-domain sockets, shared by the stream and the datagram servers.
 *
 * A socket file outlives the process that bound it (a crash, a SIGKILL, or node-unix-socket's `close()`
 * leave it behind), and binding over an existing file fails with EADDRINUSE. Python leaves the cleanup to
 * the user; sockserve replaces a *stale* socket file itself, but never touches anything else.
 *
 * "Live" is decided by a stream connect to the path (measured on Linux, Node 20):
 *   connected            → a live stream server
 *   EPROTOTYPE           → a live socket of another type (datagram, seqpacket)
 *   EAGAIN               → a live stream server whose backlog is full
 *   ECONNREFUSED         → nobody is bound: a stale file
 *   ENOENT               → the file vanished meanwhile: nothing to do
 *   anything else / timeout → unknown, treated as live (never delete when unsure)
 * A regular file also answers ECONNREFUSED, so the file type is checked first with lstat.
 */
import * as fs from 'fs';
import { promises as fsp, Stats } from 'fs';
import * as net from 'net';
import { dirname, isAbsolute, resolve } from 'path';
import { isMainThread } from 'worker_threads';
import { AddressInUseError, ConfigurationError } from '../errors/errors';

/** How long the liveness probe may take; a local connect answers in well under a millisecond. */
const PROBE_TIMEOUT_MS = 1000;

type Liveness = 'live' | 'stale' | 'gone' | { unknown: string };

/**
 * Before binding a Unix socket (stream or datagram) at `path`: nothing there → ok; a stale socket file
 * (nobody listening) → unlink it; a live socket (stream or datagram) or any non-socket file → throw
 * AddressInUseError naming the path and the fix; NEVER delete a regular file or a live socket.
 * Throws ConfigurationError, before anything is touched, for a path of 108 bytes or more (an abstract name:
 * more than 108; of a `datagram` socket, more than 107) and for a directory that is missing, is no directory or may not be searched. An abstract
 * name (`'\0name'`) has no file: nothing is checked. The check and removal run under a lock (takePathLock).
 */
export async function prepareUnixPath(path: string, owner: string, datagram = false): Promise<void> {
  if (!(await checkPathPlace(path, owner, datagram))) return;
  if (!(await statAt(path, owner))) return; // nothing there: no lock needed (two servers binding at once: the kernel refuses one)
  // Whether it is stale, and its removal, one sockserve process at a time: several starting on one stale path
  // at once could each find it stale, and one remove another's live socket, bound since (hostile runs).
  const release = await clearedUnderLock(path, owner);
  await release();
}

/**
 * prepareUnixPath() for a socket that is bound now and listens only later (a @Forking server's shared socket listens
 * once a child has called listen() on it): the lock is taken even when nothing is at the path, and kept until the
 * returned function is called, once the socket listens. Bound and not yet listening, a socket refuses a connect as a
 * stale file does, so another server checking the path in between took it for stale and removed it, then bound its
 * own: both started "listening", one on a removed file (hostile run: three servers started at once on one stale path,
 * all three resolved). Checking servers wait on the lock meanwhile, and then find a live socket.
 */
export async function claimUnixPath(path: string, owner: string): Promise<() => Promise<void>> {
  if (!(await checkPathPlace(path, owner, false))) return async () => undefined;
  return clearedUnderLock(path, owner);
}

/** Takes the path's lock and clears a stale socket file under it (clearStale); resolves to the lock's release, released already on a throw. */
async function clearedUnderLock(path: string, owner: string): Promise<() => Promise<void>> {
  const release = await takePathLock(path, owner);
  try {
    await clearStale(path, owner);
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}

/** lstat of `path`, undefined when nothing is there; a directory that cannot be read is a ConfigurationError. */
async function statAt(path: string, owner: string): Promise<Stats | undefined> {
  try {
    return await lstatOrUndefined(path);
  } catch (err) {
    throw new ConfigurationError(text.badDirectory(owner, path, dirname(path), (err as NodeJS.ErrnoException).code ?? 'EIO'), { cause: err });
  }
}

/** The checks made before anything is touched (length, directory); false for an abstract name, which has no file. */
async function checkPathPlace(path: string, owner: string, datagram: boolean): Promise<boolean> {
  if (datagram && isAbstract(path)) throw new ConfigurationError(abstractDatagramText(owner, path));
  if (!fitsSunPath(path)) throw new ConfigurationError(text.tooLong(owner, path, Buffer.byteLength(path), datagram));
  if (isAbstract(path)) return false; // Linux's abstract namespace: no file, and the kernel refuses a name in use
  const dir = dirname(path);
  // The directory, symbolic links followed (libuv would say EACCES for a missing one)
  const why = await fsp.stat(dir).then((st) => (st.isDirectory() ? undefined : 'ENOTDIR'), (err: NodeJS.ErrnoException) => err.code ?? 'EIO');
  if (why !== undefined) throw new ConfigurationError(text.badDirectory(owner, path, dir, why));
  return true;
}

/** Under the lock: nothing there, or a stale socket file (removed); anything else is an AddressInUseError. */
async function clearStale(path: string, owner: string): Promise<void> {
  const now = await statAt(path, owner);
  if (!now) return;
  if (!now.isSocket()) throw new AddressInUseError(text.notASocket(owner, path, describe(now)));
  const state = await probeUnixSocket(path);
  if (state === 'gone') return;
  if (state === 'live') throw new AddressInUseError(text.live(owner, path));
  if (state !== 'stale') throw new AddressInUseError(text.unknown(owner, path, state.unknown));
  await unlinkIgnoringMissing(path);
}

/** How long a server waits for another process checking the same path (it takes milliseconds). */
const LOCK_WAIT_MS = 5000;

/**
 * Takes `<path>.sockserve-lock`, a file made with O_EXCL that names this process, and resolves to its release:
 * another sockserve server checking the same path waits (polling every 10 ms, at most LOCK_WAIT_MS, then an
 * AddressInUseError); a lock whose process is gone (killed while it held it) is taken over, and so is one whose
 * pid now belongs to another process (abandonedLock), one contender at a time (removeAbandoned).
 */
async function takePathLock(path: string, owner: string): Promise<() => Promise<void>> {
  const lock = `${path}.sockserve-lock`;
  const key = resolve(lock);
  const t0 = Date.now();
  let made: Stats | false;
  for (;;) {
    made = await createLock(lock);
    if (made) break;
    const { abandoned, holder } = await judgeLock(lock, key);
    if (abandoned && (await removeAbandoned(lock, abandoned))) continue;
    if (Date.now() - t0 > LOCK_WAIT_MS) throw new AddressInUseError(text.locked(owner, path, lock, holder));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  locksHeldHere.add(key);
  const own = made;
  let released: Promise<void> | undefined;
  return () => (released ??= unlinkIfSame(lock, own).finally(() => locksHeldHere.delete(key)));
}

/**
 * Removes the abandoned lock file `judged` under `<lock>.takeover`, a second O_EXCL file, so that one contender at
 * a time takes a lock over: two that judged the same file abandoned each unlinked "it", the second one the lock the
 * first had made since, and two servers bound the path (hostile re-check: 3 rounds of 14 with 8 processes). Under
 * it the file is removed only if it is still the one judged. False when another contender holds the takeover
 * (wait, then look again); a takeover file its maker left (killed in those microseconds) is removed as a lock is.
 */
async function removeAbandoned(lock: string, judged: Stats): Promise<boolean> {
  const takeover = `${lock}.takeover`;
  const mine = await createLock(takeover);
  if (!mine) {
    const { abandoned } = await judgeLock(takeover, resolve(takeover));
    if (abandoned) await unlinkIfSame(takeover, abandoned);
    return false;
  }
  try {
    await unlinkIfSame(lock, judged);
  } finally {
    await unlinkIfSame(takeover, mine);
  }
  return true;
}

/**
 * A lock file (or takeover file) as found now: the pid it names (0 for none), and its Stats when it is abandoned.
 * A lock naming no process (empty: its maker was killed between creating and writing it) is abandoned once it is
 * older than a moment: it blocked every later start on the path until removed by hand (hostile run). Only a
 * regular file, as createLock() makes: anything else there (a directory) is no abandoned lock of ours, and
 * unlinking it threw a bare EISDIR out of bootstrap(); it is waited for and reported as a held lock.
 */
async function judgeLock(file: string, key: string): Promise<{ abandoned?: Stats; holder: number }> {
  const seen = await fsp.stat(file).catch(() => undefined);
  const holder = Number(await fsp.readFile(file, 'utf8').catch(() => ''));
  if (!seen?.isFile()) return { holder };
  const abandoned = holder > 0 ? await abandonedLock(holder, seen, key) : Date.now() - seen.mtimeMs > UNNAMED_LOCK_MS;
  return abandoned ? { abandoned: seen, holder } : { holder };
}

/** Unlinks `path` if it is still the file `was` (same device, inode, and last change); a missing file is no error. */
async function unlinkIfSame(path: string, was: Stats): Promise<void> {
  const now = await fsp.stat(path).catch(() => undefined);
  if (now && now.dev === was.dev && now.ino === was.ino && now.mtimeMs === was.mtimeMs && now.ctimeMs === was.ctimeMs) await unlinkIgnoringMissing(path);
}

/** The lock files (absolute paths) this process holds now. */
const locksHeldHere = new Set<string>();

/**
 * Whether a lock file naming `holder` was left by a process that no longer holds it: that process is gone; or the
 * pid is this process's own and the lock is older than this process (a container's server is pid 1 at every start: a
 * lock left by a start killed at that point named the next start's own pid, which then waited and failed at every
 * restart until the file was removed by hand: hostile run); or the process with that pid started after the lock was
 * written (its pid was reused; Linux's /proc tells start times, elsewhere such a lock is waited for as held).
 */
async function abandonedLock(holder: number, lock: Stats, key: string): Promise<boolean> {
  // This process's: abandoned if no thread of it can have written it, i.e. written before it started (a worker thread's
  // locks are in its own set) and not held here.
  if (holder === process.pid) return !locksHeldHere.has(key) && lock.mtimeMs < Date.now() - process.uptime() * 1000;
  if (!processAlive(holder)) return true;
  const started = await processStartMs(holder);
  return started !== undefined && started > lock.mtimeMs + PID_REUSE_SLACK_MS;
}

/** Milliseconds by which a process must have started after a lock's last write to be taken for a reused pid (/proc's start times are in 10 ms ticks). */
const PID_REUSE_SLACK_MS = 1000;

/** When the process `pid` started (ms since the epoch), from Linux's /proc; undefined where that cannot be read. */
async function processStartMs(pid: number): Promise<number | undefined> {
  try {
    const [stat, uptime] = await Promise.all([fsp.readFile(`/proc/${pid}/stat`, 'utf8'), fsp.readFile('/proc/uptime', 'utf8')]);
    // Fields after the command name (in parentheses, which may hold spaces): state is field 3, starttime field 22,
    // in clock ticks since boot (USER_HZ, 100 on Linux).
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const bootedAgoMs = Number(uptime.split(' ')[0]) * 1000;
    if (!Number.isFinite(ticks) || !Number.isFinite(bootedAgoMs)) return undefined;
    return Date.now() - bootedAgoMs + ticks * 10;
  } catch {
    return undefined;
  }
}

/** Milliseconds after which a lock file that names no process is taken for abandoned (its maker writes its pid at once). */
const UNNAMED_LOCK_MS = 1000;

/**
 * Creates the lock file (O_EXCL) with this process's pid in it: its Stats, or false when another holds it. A write
 * that fails (ENOSPC) removes the file it made: an empty lock left behind looked held by someone (hostile run).
 */
async function createLock(lock: string): Promise<Stats | false> {
  let file: fsp.FileHandle;
  try {
    file = await fsp.open(lock, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await file.writeFile(String(process.pid));
    return await file.stat();
  } catch (err) {
    await unlinkIgnoringMissing(lock);
    throw err;
  } finally {
    await file.close().catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Linux's sun_path holds 108 bytes, the terminating NUL included (Python: "AF_UNIX path too long"). */
const SUN_PATH_BYTES = 108;

/**
 * Whether `path` fits sun_path: its 108 bytes hold a file path and its NUL (at most 107 bytes), or an abstract
 * name with its leading NUL and no end (at most 108 bytes, the NUL included). A datagram socket takes no abstract
 * name (abstractDatagramName).
 */
export function fitsSunPath(path: string): boolean {
  return Buffer.byteLength(path) <= (isAbstract(path) ? SUN_PATH_BYTES : SUN_PATH_BYTES - 1);
}

/**
 * Where a socket file is bound, made absolute against the current directory when it fits sun_path, so that
 * close() removes (and libuv unlinks) the file this server made, not a file of that name in the directory a
 * later chdir() moved to: a relative path left the server's socket file behind. The server's address stays
 * as given, as Python's. An abstract name, or a path whose absolute form is too long, is kept as it is.
 */
export function boundPath(path: string): string {
  if (isAbstract(path) || isAbsolute(path)) return path;
  const absolute = resolve(path);
  return fitsSunPath(absolute) ? absolute : path;
}

/**
 * A name in Linux's abstract namespace (`'\0name'`, as Node's net and Python accept): no file is made, so
 * there is nothing to check before binding nor to remove after.
 */
export function isAbstract(path: string): boolean {
  return path.startsWith('\0');
}

/**
 * Which file a server created at its path, read right after binding: device and inode, and its birth
 * time, because a file system reuses the inode number of a file removed a moment ago.
 */
export interface PathIdentity {
  dev: number;
  ino: number;
  born: number;
}

function sameFile(stats: Stats, created: PathIdentity | undefined): boolean {
  return created !== undefined && stats.dev === created.dev && stats.ino === created.ino && bornAt(stats) === created.born;
}

/** Birth time where the file system records it, else the inode's change time (set when the socket was bound). */
function bornAt(stats: Stats): number {
  return stats.birthtimeMs || stats.ctimeMs;
}

/** The identity of the file now at `path`, or undefined when there is none. */
export async function identityOf(path: string): Promise<PathIdentity | undefined> {
  if (isAbstract(path)) return undefined;
  const stats = await lstatOrUndefined(path);
  return stats && { dev: stats.dev, ino: stats.ino, born: bornAt(stats) };
}

/** identityOf(), synchronously (for the rare moment a socket is replaced in place). */
export function identityOfSync(path: string): PathIdentity | undefined {
  if (isAbstract(path)) return undefined;
  const stats = lstatSyncOrUndefined(path);
  return stats && { dev: stats.dev, ino: stats.ino, born: bornAt(stats) };
}

/** Whether the file at `path` is still the very socket file described by `created`. */
export function isOwnFile(path: string, created: PathIdentity | undefined): boolean {
  if (isAbstract(path)) return false;
  const stats = lstatSyncOrUndefined(path);
  return stats !== undefined && stats.isSocket() && sameFile(stats, created);
}

/** Remove the socket file on close only if it is still the very file this server created (same device and inode). */
export async function removeUnixPath(path: string, created: PathIdentity | undefined): Promise<void> {
  if (isAbstract(path)) return;
  const stats = await lstatOrUndefined(path);
  if (stats?.isSocket() && sameFile(stats, created)) await unlinkIgnoringMissing(path);
}

/**
 * Runs `close` (a Unix stream server's close, during which libuv unlinks the server's path whatever file
 * is there) without losing another file that took the path meanwhile (another server's live socket, after
 * ours was removed): that file is moved aside for the moment `close` runs and put back at once.
 */
export function closeSparingOthers(path: string, created: PathIdentity | undefined, close: () => void): void {
  if (isAbstract(path)) return close();
  const stats = lstatSyncOrUndefined(path);
  if (!stats || sameFile(stats, created)) return close();
  const aside = `${path}.sockserve-aside-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(path, aside);
  } catch {
    return close(); // cannot move it: closing would remove it, but not closing would leak the listener
  }
  try {
    close();
  } finally {
    fs.renameSync(aside, path);
  }
}

/** Tries a stream connect to `path` and classifies the answer (see the table at the top of this file). */
function probeUnixSocket(path: string): Promise<Liveness> {
  return new Promise<Liveness>((resolve) => {
    const socket = net.connect({ path });
    const finish = (state: Liveness) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined); // a late error after destroy() must not become uncaught
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => finish({ unknown: `no answer within ${PROBE_TIMEOUT_MS} ms` }), PROBE_TIMEOUT_MS);
    socket.once('connect', () => finish('live'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      switch (err.code) {
        case 'ECONNREFUSED': return finish('stale');
        case 'ENOENT': return finish('gone');
        case 'EPROTOTYPE':
        case 'EAGAIN': return finish('live');
        default: return finish({ unknown: err.code ?? err.message });
      }
    });
  });
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkIgnoringMissing(path: string): Promise<void> {
  try {
    await fsp.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function describe(stats: Stats): string {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symbolic link';
  if (stats.isFIFO()) return 'FIFO';
  return 'device file';
}

/**
 * The ConfigurationError's text for an abstract name given to a Unix datagram server (decorator and runtime checks):
 * node-unix-socket binds it padded with NUL bytes to 108 bytes (measured: /proc/net/unix lists '@name@@@…'), so
 * clients naming it '\0name' were refused (ECONNREFUSED) while the server said it listened (hostile run).
 */
export function abstractDatagramText(owner: string, path: string): string {
  return `${owner}: path ${JSON.stringify(path)} is a name in Linux's abstract namespace, which a Unix datagram server cannot take: node-unix-socket, which binds Unix datagram sockets, binds an abstract name padded with NUL bytes to 108 bytes, so a client that sends to '\\0name' (Python, socat, any other program) is refused (ECONNREFUSED) while the server says it listens. ` +
    `Fix: give a Unix datagram server a filesystem path (abstract names work for Unix stream servers).`;
}

const text = {
  tooLong: (owner: string, path: string, bytes: number, datagram = false) =>
    `${owner}: the Unix socket path ${JSON.stringify(path)} is ${bytes} bytes long, and a Unix socket path must be ` +
    `shorter than 108 bytes${datagram ? '' : ", an abstract name ('\\0name') at most 108"} (sun_path; the kernel would bind a truncated ` +
    `one). Fix: use a shorter path, for example in os.tmpdir() or relative to the working directory.`,
  badDirectory: (owner: string, path: string, dir: string, code: string) =>
    `${owner}: cannot bind a Unix socket at ${path}, because its directory ${dir} ` +
    (code === 'ENOENT'
      ? `does not exist. Fix: create the directory first (fs.mkdirSync(dir, { recursive: true })), or choose a path in an existing one.`
      : code === 'ENOTDIR'
        ? `is not a directory (ENOTDIR). Fix: choose a path in a directory.`
        : code === 'EACCES' || code === 'EPERM'
          ? `may not be searched by this process (${code}). Fix: choose a directory this process may enter and write to (os.tmpdir(), $XDG_RUNTIME_DIR).`
          : `could not be read (${code}). Fix: choose a path in a directory this process may write to.`),
  live: (owner: string, path: string) =>
    `${owner}: the Unix socket path ${path} is already in use by a live socket (another server is bound ` +
    `there). Fix: stop the other server, or choose another path.`,
  notASocket: (owner: string, path: string, kind: string) =>
    `${owner}: cannot bind a Unix socket at ${path}, because a ${kind} exists there and sockserve never ` +
    `deletes anything but a stale socket file. Fix: move or remove that ${kind} yourself, or choose another path.`,
  locked: (owner: string, path: string, lock: string, pid: number) =>
    `${owner}: ${pid === process.pid ? `this process (pid ${pid}: another of its threads, or one that ended while it held the lock)` : `another process${pid > 0 ? ` (pid ${pid})` : ''}`} has held the Unix socket path ${path} for more than ` +
    `${LOCK_WAIT_MS / 1000} s (its lock ${lock}): a server starting there, checking the path or waiting for its @Forking ` +
    `children to listen on it. Fix: stop the other server, or remove ${lock} if no server is starting there.`,
  unknown: (owner: string, path: string, why: string) =>
    `${owner}: the Unix socket path ${path} exists and could not be checked for a live server (${why}), ` +
    `so it is left alone. Fix: make sure no server uses it and remove it yourself, or choose another path.`,
};

function lstatSyncOrUndefined(path: string): Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Runs `bind` (a synchronous bind that creates a Unix socket file) under a umask that leaves exactly `mode`
 * (a Unix server's `mode`), so that the file never exists with wider permission bits: a chmod() after the
 * bind left a window in which a peer the mode excludes could connect (the kernel checks the file's bits at
 * connect() and send() only), and was then served. Process-wide, but only for this synchronous call; worker
 * threads cannot set the umask (the chmod() that follows the bind is then all there is). No `mode`: as it is.
 */
export function bindingWithMode<T>(mode: number | undefined, bind: () => T): T {
  if (mode === undefined || !isMainThread) return bind();
  // Never wider than the umask in force: the umask is the whole process's, and another thread (a worker, libuv's
  // pool running an fs call of this one) creating a file meanwhile got `mode`'s bits (0o666: world-writable)
  // instead of its own. Only narrower: the file is then born narrower than `mode`, and the chmod() after gives
  // it `mode`. (process.umask() with no argument reads it without changing it: DEP0139 is documentation-only.)
  const previous = process.umask();
  process.umask(previous | (~mode & 0o777));
  try {
    return bind();
  } finally {
    process.umask(previous);
  }
}
