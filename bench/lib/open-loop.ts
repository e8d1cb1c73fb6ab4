// An open-loop load generator: requests leave at a fixed arrival rate whatever the answers do, so a
// slow system builds a queue instead of slowing the load down. Plain fetch (keep-alive by default).

export interface OpenLoopOptions {
	ratePerSecond: number;
	durationMs: number;
	/** Longest one request may take, its body included; past it the request counts as cut off. */
	timeoutMs: number;
	/** The index-th request (0-based). */
	request(index: number): Request;
	/** Response headers to keep on each shot, lower-case. */
	keepHeaders?: readonly string[];
	/** Called as each shot ends, e.g. for a progress line. */
	onShot?(shot: Shot): void;
}

/** One request of the run; times are ms since the run started. */
export interface Shot {
	index: number;
	dueMs: number;
	sentMs: number;
	endMs: number;
	/** Absent when no HTTP answer came. */
	status?: number;
	/** Why there was no complete answer: the time limit passed, or the connection failed. */
	cutOff?: "timeout" | "network";
	detail?: string;
	headers: Record<string, string>;
	/** The body of an answer that was not 2xx (an error message), else absent. */
	errorBody?: string;
}

export interface OpenLoopRun {
	/** performance.now() when the first request was due; samplers use the same clock. */
	startedAtMs: number;
	offered: number;
	shots: Shot[];
}

function sleep(ms: number): Promise<void> {
	return new Promise((wake) => setTimeout(wake, ms));
}

async function shoot(
	options: OpenLoopOptions,
	index: number,
	dueMs: number,
	startedAtMs: number,
): Promise<Shot> {
	const sentMs = performance.now() - startedAtMs;
	const shot: Shot = { index, dueMs, sentMs, endMs: sentMs, headers: {} };
	try {
		const request = options.request(index);
		const response = await fetch(request, { signal: AbortSignal.timeout(options.timeoutMs) });
		shot.status = response.status;
		for (const name of options.keepHeaders ?? []) {
			const value = response.headers.get(name);
			if (value !== null) shot.headers[name] = value;
		}
		const body = await response.text();
		if (!response.ok) shot.errorBody = body;
	} catch (error) {
		const timedOut = error instanceof DOMException && error.name === "TimeoutError";
		shot.cutOff = timedOut ? "timeout" : "network";
		shot.detail = error instanceof Error ? `${error.message} ${String(error.cause ?? "")}` : "";
	}
	shot.endMs = performance.now() - startedAtMs;
	options.onShot?.(shot);
	return shot;
}

/**
 * Starts round(rate × duration) calls at evenly spaced due times, each whatever the earlier ones are
 * doing (a caller of its own, e.g. one that retries), then waits for every call to end.
 */
export async function runArrivals<T>(
	ratePerSecond: number,
	durationMs: number,
	call: (index: number, dueMs: number, startedAtMs: number) => Promise<T>,
): Promise<{ startedAtMs: number; offered: number; results: T[] }> {
	const offered = Math.round((ratePerSecond * durationMs) / 1000);
	const startedAtMs = performance.now();
	const results: Promise<T>[] = [];
	for (let index = 0; index < offered; index++) {
		const dueMs = (index * 1000) / ratePerSecond;
		const earlyMs = startedAtMs + dueMs - performance.now();
		if (earlyMs > 0) await sleep(earlyMs);
		results.push(call(index, dueMs, startedAtMs));
	}
	return { startedAtMs, offered, results: await Promise.all(results) };
}

/**
 * Sends round(rate × duration) requests at evenly spaced due times, then waits for every answer;
 * it ends at most timeoutMs after the last send.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopRun> {
	const { startedAtMs, offered, results } = await runArrivals(
		options.ratePerSecond,
		options.durationMs,
		(index, dueMs, startedAtMs) => shoot(options, index, dueMs, startedAtMs),
	);
	return { startedAtMs, offered, shots: results };
}
