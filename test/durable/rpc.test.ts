// The Pool object over RPC: its state outlives the instance, and an alarm reclaims abandoned leases.

import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { poolAsk } from "../support/pool-ask.ts";

const ask = poolAsk;

/** The Pool writes its state at most 25 ms after a change: a restart keeps what is older. */
const persisted = () => new Promise((resolve) => setTimeout(resolve, 50));

it("a restart does not refill an empty bucket", async () => {
	// "tight" holds 2 requests of burst and refills one a second.
	const stub = env.POOL.getByName(`tight/${crypto.randomUUID()}`); // its own instance of "tight"
	for (let i = 0; i < 2; i++) {
		const result = await stub.acquire(ask());
		expect(result.kind).toBe("admitted");
		if (result.kind === "admitted") await stub.release(result.lease.ticketId, 100);
	}
	const before = await stub.status();
	expect(before.requests.remaining).toBe(0);

	await persisted();
	await evictDurableObject(stub);

	const after = await stub.status();
	expect(after.requests.remaining).toBe(0);
	expect(after.requests.resetMs).toBeGreaterThan(1000);
});

it("a lease whose holder vanished is reclaimed by the alarm", async () => {
	// "shortlease": one request at a time, leases expire after 100 ms.
	const stub = env.POOL.getByName(`shortlease/${crypto.randomUUID()}`);
	const held = await stub.acquire(ask());
	expect(held.kind).toBe("admitted");
	expect((await stub.status()).inFlight).toBe(1);

	await persisted();
	await evictDurableObject(stub); // the holder never comes back to release it
	await new Promise((resolve) => setTimeout(resolve, 300));
	// The alarm set for the lease's expiry has fired by now, or fires here if the runtime is late.
	await runDurableObjectAlarm(stub);

	expect((await stub.status()).inFlight).toBe(0);
	expect((await stub.acquire(ask())).kind).toBe("admitted");
});

it("a waiter that gives up is removed and charged nothing", async () => {
	const stub = env.POOL.getByName(`tight/${crypto.randomUUID()}`); // its own instance of "tight"
	const first = ask();
	await stub.acquire(first);
	await stub.acquire(ask());
	const waiting = ask({ tokens: 5000 });
	const pending = stub.acquire(waiting);
	await new Promise((resolve) => setTimeout(resolve, 20));
	const tokensWhileWaiting = (await stub.status()).tokens.remaining;
	expect((await stub.status()).queued).toBe(1);

	await stub.cancel(waiting.ticketId);

	expect((await pending).kind).toBe("cancelled");
	const status = await stub.status();
	expect(status.queued).toBe(0);
	expect(status.tokens.remaining).toBeGreaterThanOrEqual(tokensWhileWaiting);
});
