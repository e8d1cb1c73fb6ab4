// Through the Worker: a caller that goes away frees what it held, whether it was waiting in the
// queue or reading a stream.
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

function request(pool: string, body: object, signal?: AbortSignal): Request {
	return new Request(`http://tollbooth.test/${pool}/v1/chat/completions`, {
		method: "POST",
		headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
		body: JSON.stringify({
			model: "gpt-4o-mini",
			messages: [{ role: "user", content: "Hi" }],
			max_tokens: 16,
			...body,
		}),
		signal,
	});
}

const send = (pool: string, body: object) => exports.default.fetch(request(pool, body));

/** Calls the handler directly (fetch-unit), so the caller's AbortSignal is the request's own signal. */
const sendAbortable = (pool: string, body: object, signal: AbortSignal) =>
	worker.fetch(
		request(pool, body, signal) as Parameters<typeof worker.fetch>[0],
		env,
		createExecutionContext(),
	);

const status = (pool: string) => env.POOL.getByName(pool).status();

it("a caller that leaves mid-stream frees its slot at once, not at lease expiry", async () => {
	upstream = installMockUpstream({ chunkDelayMs: 100 });
	const response = await send("openai", { stream: true });
	const reader = response.body?.getReader();
	expect((await reader?.read())?.done).toBe(false);
	expect((await status("openai")).inFlight).toBe(1);

	const leftAt = Date.now();
	await reader?.cancel();
	await vi.waitFor(async () => expect((await status("openai")).inFlight).toBe(0), {
		timeout: 1000,
		interval: 20,
	});
	expect(Date.now() - leftAt).toBeLessThan(1000);
});

it("a caller that leaves while queued is removed from the queue and charged nothing", async () => {
	upstream = installMockUpstream();
	await Promise.all([send("tight", {}), send("tight", {})]); // the burst is spent: the next one waits
	const before = await status("tight");
	const caller = new AbortController();
	const waiting = sendAbortable("tight", {}, caller.signal);
	await vi.waitFor(async () => expect((await status("tight")).queued).toBe(1), { interval: 10 });

	caller.abort();
	await vi.waitFor(async () => expect((await status("tight")).queued).toBe(0), {
		timeout: 1000,
		interval: 10,
	});
	expect((await waiting).status).toBe(499);
	const after = await status("tight");
	expect(after.inFlight).toBe(0);
	expect(after.tokens.remaining).toBeGreaterThanOrEqual(before.tokens.remaining);
	expect(upstream.sent).toHaveLength(2);
});
