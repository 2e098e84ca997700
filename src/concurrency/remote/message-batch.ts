/**
 * A relayed connection's traffic to a worker thread, gathered over one turn of the event loop and posted
 * as one message: each postMessage costs a structured clone, a wake-up of the thread and an event there,
 * and with many relayed connections the bytes a whole poll phase read then cross together (16 relayed
 * connections' ping-pong, npm run bench: 0.26x raw net -> 0.33x on Node 20, 0.28x -> 0.39x on Node 22).
 * The batch goes at the check phase that follows (setImmediate), or at once by flush(), before a message
 * that must not overtake it. Order is kept.
 *
 * Only messages sockserve builds from its own data go through here (bytes in buffers of their own,
 * addresses): one that cannot be cloned would have failed alone, and still does, through `lost`.
 */
export class MessageBatch<M> {
  private queue: M[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;
  private readonly flushLater = () => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * `send` posts one message, or a batch (`{ t: 'batch', msgs }`) when more than one is waiting, and may
   * throw (a DataCloneError); `lost` hears of each message that could not be posted even alone.
   */
  constructor(
    private readonly send: (msg: M | { t: 'batch'; msgs: M[] }, transfer: ArrayBuffer[]) => void,
    private readonly lost: (msg: M, err: unknown) => void,
  ) {}

  /** Queues `msg`; the buffers in `transfer` move with it (they must be its own). */
  post(msg: M, transfer?: ArrayBuffer[]): void {
    this.queue.push(msg);
    if (transfer) for (const buffer of transfer) this.transfer.push(buffer);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushLater);
    }
  }

  /** Posts what is waiting, now. */
  flush(): void {
    const queue = this.queue;
    if (queue.length === 0) return;
    const transfer = this.transfer;
    this.queue = [];
    this.transfer = [];
    try {
      this.send(queue.length === 1 ? queue[0] : { t: 'batch', msgs: queue }, transfer);
    } catch (err) {
      // Nothing was sent (a clone fails before any message is queued over there): post them one by one,
      // each with the buffers it holds, so one bad message costs only its own request.
      for (const msg of queue) {
        try {
          this.send(msg, transfer.filter((buffer) => holds(msg, buffer)));
        } catch (one) {
          this.lost(msg, one ?? err);
        }
      }
    }
  }
}

/** Whether `msg` carries `buffer` (in a field of its own: relayed messages keep their bytes one level down). */
function holds(msg: unknown, buffer: ArrayBuffer): boolean {
  if (typeof msg !== 'object' || msg === null) return false;
  for (const value of Object.values(msg)) if (ArrayBuffer.isView(value) && value.buffer === buffer) return true;
  return false;
}
