// The Pool object re-reads tenant policies when the configuration changes: a tenant's new limit
// (or weight) applies to the very next decision, with no restart of the object.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { AcquireRequest, Pool } from "../../src/durable/pool.ts";
import { testConfig } from "../support/test-config.ts";

function ask(overrides: Partial<AcquireRequest> = {}): AcquireRequest {
	return {
		ticketId: crypto.randomUUID(),
		tenant: "team-a",
		model: "gpt-4o-mini",
		priority: "normal",
		tokens: 100,
		maxWaitMs: 50,
		...overrides,
	};
}

/** Serves the object `config` from now on, as a changed TOLLBOOTH_CONFIG would. */
async function configure(stub: DurableObjectStub<Pool>, config: typeof testConfig): Promise<void> {
	await runInDurableObject(stub, (instance: Pool) => {
		const object = instance as unknown as { env: Record<string, unknown> };
		object.env = { ...object.env, TOLLBOOTH_CONFIG: JSON.stringify(config) };
	});
}

const withTeamA = (limits: object) => ({
	...testConfig,
	tenants: testConfig.tenants.map((tenant) =>
		tenant.name === "team-a" ? { ...tenant, limits } : tenant,
	),
});

it("applies a tenant's changed limit to the next decision, without a restart", async () => {
	const stub = env.POOL.getByName(`openai/${crypto.randomUUID()}`);
	expect((await stub.acquire(ask())).kind).toBe("admitted");
	expect((await stub.acquire(ask())).kind).toBe("admitted");

	await configure(stub, withTeamA({ maxConcurrent: 2 }));
	// Two of its own in flight: the third waits out its 50 ms and is refused; another tenant is not.
	expect((await stub.acquire(ask())).kind).toBe("rejected");
	expect((await stub.acquire(ask({ tenant: "team-b" }))).kind).toBe("admitted");
	expect((await stub.status()).tenants["team-a"]).toMatchObject({ inFlight: 2, maxConcurrent: 2 });

	await configure(stub, withTeamA({}));
	expect((await stub.acquire(ask())).kind).toBe("admitted");
	expect((await stub.status()).tenants["team-a"]?.maxConcurrent).toBeUndefined();
});
