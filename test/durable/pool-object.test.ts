// The Pool object itself, over RPC: what survives a restart, a burst of concurrent calls, a 429's
// pause, a backoff and its cancellation, decided in one call per send that did not succeed.
// Each test uses its own instance of a configured pool ("<pool>/<id>").
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { poolAsk } from "../support/pool-ask.ts";

const ask = poolAsk;

const instanceOf = (pool: string) => env.POOL.getByName(`${pool}/${crypto.randomUUID()}`);
/** The Pool writes its state at most 25 ms after a change: a restart keeps what is older. */
const persisted = () => new Promise((resolve) => setTimeout(resolve, 50));

it("leases in flight are still counted after a restart, and their slots still bind", async () => {
	const stub = instanceOf("tight"); // 2 at once
	const first = await stub.acquire(ask());
	const second = await stub.acquire(ask());
	expect([first.kind, second.kind]).toEqual(["admitted", "admitted"]);

	await persisted();
	await evictDurableObject(stub);

	expect((await stub.status()).inFlight).toBe(2);
	const third = ask({ maxWaitMs: 60_000 });
	const waiting = stub.acquire(third);
	await new Promise((resolve) => setTimeout(resolve, 50));
	expect((await stub.status()).queued).toBe(1);
	if (first.kind === "admitted") await stub.release(first.lease.ticketId, 100, true);
	expect((await waiting).kind).toBe("admitted");
});

it("a burst of concurrent acquires never admits more than maxConcurrent", async () => {
	const stub = instanceOf("openai"); // 50 at once
	const results = await Promise.all(
		Array.from({ length: 80 }, () =>
			Promise.race([
				stub.acquire(ask({ tokens: 1 })),
				new Promise<{ kind: "still waiting" }>((resolve) =>
					setTimeout(() => resolve({ kind: "still waiting" }), 200),
				),
			]),
		),
	);
	expect(results.filter((result) => result.kind === "admitted")).toHaveLength(50);
	expect(results.filter((result) => result.kind === "still waiting")).toHaveLength(30);
	const status = await stub.status();
	expect(status.inFlight).toBe(50);
	expect(status.queued).toBe(30);
});

it("a provider 429 pauses the whole pool and the request goes again when the pause is over", async () => {
	const stub = instanceOf("openai");
	const request = ask();
	const admitted = await stub.acquire(request);
	if (admitted.kind !== "admitted") throw new Error(admitted.kind);
	const startedMs = Date.now();
	const again = stub.attemptEnded(
		admitted.lease.ticketId,
		{ status: 429, retryAfterMs: 300 },
		request,
	);
	await new Promise((resolve) => setTimeout(resolve, 20));
	// Everyone waits out the pause, not only the request that met the 429.
	expect((await stub.status()).pausedUntilMs).toBeGreaterThan(Date.now());
	const other = stub.acquire(ask());

	const resent = await again;
	expect(resent.kind).toBe("admitted");
	expect(Date.now() - startedMs).toBeGreaterThanOrEqual(295);
	if (resent.kind === "admitted") expect(resent.lease.attempt).toBe(2);
	expect((await other).kind).toBe("admitted");
});

it("a failing send goes again after a backoff, until maxAttempts, then the verdict is final", async () => {
	const stub = instanceOf("openai"); // maxAttempts 3
	const request = ask();
	let answer = await stub.acquire(request);
	const attempts: number[] = [];
	for (;;) {
		if (answer.kind !== "admitted") break;
		attempts.push(answer.lease.attempt);
		const next = await stub.attemptEnded(answer.lease.ticketId, { status: 503 }, request);
		if (next.kind === "final") {
			expect(next.reason).toBe("attempts_exhausted");
			break;
		}
		answer = next;
	}
	expect(attempts).toEqual([1, 2, 3]);
	expect((await stub.status()).inFlight).toBe(0);
});

it("an answer that is not a failure is final at once and releases the lease with nothing charged", async () => {
	const stub = instanceOf("openai");
	const request = ask({ tokens: 5000 });
	const before = (await stub.status()).tokens.remaining;
	const admitted = await stub.acquire(request);
	if (admitted.kind !== "admitted") throw new Error(admitted.kind);
	const verdict = await stub.attemptEnded(admitted.lease.ticketId, { status: 400 }, request);
	expect(verdict).toMatchObject({ kind: "final", reason: "provider_400" });
	const status = await stub.status();
	expect(status.inFlight).toBe(0);
	expect(status.tokens.remaining).toBeGreaterThanOrEqual(before);
});

it("a caller who leaves during a backoff is answered cancelled and never re-admitted", async () => {
	const stub = instanceOf("openai");
	const request = ask();
	const admitted = await stub.acquire(request);
	if (admitted.kind !== "admitted") throw new Error(admitted.kind);
	// A timeout's backoff is at least the first step's jitter; cancel at once.
	const again = stub.attemptEnded(
		admitted.lease.ticketId,
		{ status: 500, retryAfterMs: 2000 },
		request,
	);
	await new Promise((resolve) => setTimeout(resolve, 20));
	await stub.cancel(request.ticketId);
	expect((await again).kind).toBe("cancelled");
	const status = await stub.status();
	expect(status.inFlight).toBe(0);
	expect(status.queued).toBe(0);
});

it("limits learned from the provider's headers survive a restart", async () => {
	const stub = instanceOf("learner"); // configured at 6000 a minute
	const admitted = await stub.acquire(ask());
	if (admitted.kind !== "admitted") throw new Error(admitted.kind);
	await stub.release(admitted.lease.ticketId, 100, true, {
		requests: { limit: 60, remaining: 59, resetMs: 1000 },
	});
	expect((await stub.status()).limitsInForce.requestsPerMinute).toBe(60);

	await persisted();
	await evictDurableObject(stub);

	const after = await stub.status();
	expect(after.limitsInForce.requestsPerMinute).toBe(60);
	expect(after.requests.limitPerMinute).toBe(60);
	expect(after.requests.remaining).toBeLessThanOrEqual(59);
});
