// The Pool object over RPC: a lease lives a lease lifetime (30 s by default, 300 ms in the
// "renewing" test pool) past its admission or its last renewal, so a Worker killed mid-stream holds
// its slot no longer than that.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { parseConfig } from "../../src/config.ts";
import { poolAsk } from "../support/pool-ask.ts";
import { testConfig } from "../support/test-config.ts";

const ask = poolAsk;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("expires leases after 30 s by default", () => {
	const parsed = parseConfig({
		...testConfig,
		pools: [{ ...testConfig.pools[0], leaseTtlMs: undefined }],
	});
	expect(parsed.ok && parsed.config.pools[0]?.leaseTtlMs).toBe(30_000);
});

it("a Worker killed mid-stream (never renews, never releases) frees its slot within the expiry", async () => {
	// "renewing": one slot, leases live 300 ms.
	const stub = env.POOL.getByName(`renewing/${crypto.randomUUID()}`);
	const held = await stub.acquire(ask());
	expect(held.kind).toBe("admitted");
	const killedMs = Date.now(); // its Worker is gone: no renewal, no release
	// The next caller waits for the slot, and gets it once the lease has expired.
	const next = await stub.acquire(ask());
	expect(next.kind).toBe("admitted");
	const freedAfterMs = Date.now() - killedMs;
	expect(freedAfterMs).toBeGreaterThanOrEqual(250);
	expect(freedAfterMs).toBeLessThan(300 + 250);
});

it("a renewed lease outlives its lifetime; once no longer renewed, the alarm reclaims it", async () => {
	const stub = env.POOL.getByName(`renewing/${crypto.randomUUID()}`);
	const held = await stub.acquire(ask());
	if (held.kind !== "admitted") throw new Error(`not admitted: ${held.kind}`);
	for (let i = 0; i < 5; i++) {
		await sleep(100);
		expect(await stub.renew(held.lease.ticketId)).toBe(true);
	}
	// 500 ms in (past its first 300 ms): still held, even when the alarm runs.
	await runDurableObjectAlarm(stub);
	expect((await stub.status()).inFlight).toBe(1);
	expect((await stub.acquire(ask({ maxWaitMs: 1 }))).kind).toBe("rejected");

	await sleep(350);
	await runDurableObjectAlarm(stub);
	expect((await stub.status()).inFlight).toBe(0);
	// A late renewal says so; its holder carries on regardless.
	expect(await stub.renew(held.lease.ticketId)).toBe(false);
	expect((await stub.acquire(ask())).kind).toBe("admitted");
});
