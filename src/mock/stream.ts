// Bodies that arrive over time: SSE frames paced by a delay, and bodies that break on purpose
// (a stream cut half-way), all stopping when the caller goes away.

const encoder = new TextEncoder();

/** One server-sent event; `data` is sent as is when it is a string, else as JSON. */
export function sseFrame(data: unknown, event?: string): string {
	const dataLine = `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
	return event === undefined ? dataLine : `event: ${event}\n${dataLine}`;
}

/** Resolves after `delayMs` (at once for 0); rejects with the signal's reason if it aborts first. */
export function sleep(delayMs: number, signal: AbortSignal): Promise<void> {
	signal.throwIfAborted();
	if (delayMs <= 0) return Promise.resolve();
	return new Promise((resolve, reject) => {
		const onAbort = () => {
			clearTimeout(timer);
			reject(signal.reason);
		};
		const timer = setTimeout(() => {
			signal.removeEventListener("abort", onAbort);
			resolve();
		}, delayMs);
		signal.addEventListener("abort", onAbort, { once: true });
	});
}

/** Never resolves; rejects with the signal's reason once it aborts. */
export function untilAborted(signal: AbortSignal): Promise<never> {
	return new Promise((_, reject) => {
		if (signal.aborted) reject(signal.reason);
		signal.addEventListener("abort", () => reject(signal.reason), { once: true });
	});
}

export interface PacedBodyOptions {
	/** Between pieces; the first piece is sent at once. */
	gapMs: number;
	/** When set, the body errors (a broken connection) after this many pieces. */
	cutAfterPieces?: number;
	signal: AbortSignal;
}

/** A body that sends `pieces` one at a time, `gapMs` apart, pulled only as the reader reads. */
export function pacedBody(pieces: string[], options: PacedBodyOptions): ReadableStream<Uint8Array> {
	const cancelled = new AbortController();
	const signal = AbortSignal.any([options.signal, cancelled.signal]);
	let sent = 0;
	return new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				if (sent === options.cutAfterPieces) {
					controller.error(new Error("mock fault: the stream was cut half-way"));
					return;
				}
				const piece = pieces[sent];
				if (piece === undefined) {
					controller.close();
					return;
				}
				if (sent > 0) await sleep(options.gapMs, signal);
				controller.enqueue(encoder.encode(piece));
				sent += 1;
			},
			cancel(reason) {
				cancelled.abort(reason);
			},
		},
		{ highWaterMark: 0 },
	);
}
