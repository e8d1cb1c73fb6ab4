// Through the Worker: a pool whose provider counts 5 requests in any second (algorithm
// "sliding-window", windowMs 1000) under 3× that for 4 s: no second of the provider's traffic ever
// holds more than 5 sends, every caller is answered or told, and the windows are used.
import { afterEach, expect, it } from "vitest";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const PER_WINDOW = 5;
const WINDOW_MS = 1000;
/** A window's admissions are counted per slot of 10 ms: allow the provider that much receive jitter. */
const SLOT_MS = 10;

/**
 * The longest this isolate's event loop stalled while `run` ran. A send leaves the Worker that much
 * after its admission at worst: on a loaded machine sends admitted in two windows can arrive
 * together, as network jitter would make them arrive at a real provider.
 */
async function withLoopStalls<T>(run: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
	const everyMs = 5;
	let stallMs = 0;
	let lastMs = Date.now();
	const timer = setInterval(() => {
		const nowMs = Date.now();
		stallMs = Math.max(stallMs, nowMs - lastMs - everyMs);
		lastMs = nowMs;
	}, everyMs);
	try {
		return { result: await run(), stallMs };
	} finally {
		clearInterval(timer);
	}
}

it("never sends more than the limit in any window, at 3× the limit", {
	timeout: 20_000,
}, async () => {
	upstream = installMockUpstream();
	const everyMs = WINDOW_MS / (3 * PER_WINDOW);
	const { result: statuses, stallMs } = await withLoopStalls(async () => {
		const answers: Promise<Response>[] = [];
		for (let i = 0; i < (4 * WINDOW_MS) / everyMs; i++) {
			answers.push(postToPool("window", { headers: { "x-max-wait-ms": "2000" } }));
			await new Promise((resolve) => setTimeout(resolve, everyMs));
		}
		return Promise.all(answers.map(async (answer) => (await answer).status));
	});
	expect(statuses.every((status) => status === 200 || status === 429)).toBe(true);

	const sentMs = upstream.sent.map(({ atMs }) => atMs).sort((a, b) => a - b);
	expect(sentMs.length).toBe(statuses.filter((status) => status === 200).length);
	let busiest = 0;
	for (const [i, fromMs] of sentMs.entries()) {
		const windowEndMs = fromMs + WINDOW_MS - Math.max(SLOT_MS, stallMs);
		const inWindow = sentMs.slice(i).filter((atMs) => atMs < windowEndMs).length;
		busiest = Math.max(busiest, inWindow);
	}
	expect(busiest).toBeLessThanOrEqual(PER_WINDOW);
	// ~6 s from the first send to the last caller's deadline: at least 5 windows' worth were sent.
	expect(sentMs.length).toBeGreaterThanOrEqual(5 * PER_WINDOW);
});
