// The Pool object re-reads tenant policies when the configuration changes: a tenant's new limit
// (or weight) applies to the very next decision, with no restart of the object. Runtime tenants
// (the admin API's, in the registry) are held to their own limits from their first request.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { AcquireRequest, Pool } from "../../src/durable/pool.ts";
import { REGISTRY_NAME } from "../../src/durable/registry.ts";
import { poolAsk } from "../support/pool-ask.ts";
import { testConfig } from "../support/test-config.ts";

/** A short wait: a request over a tenant's own limit is refused after 50 ms. */
const ask = (overrides: Partial<AcquireRequest> = {}) => poolAsk({ maxWaitMs: 50, ...overrides });

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

it("holds a runtime tenant (created through the admin API's registry) to its own limits and weight", async () => {
	const tenant = `runtime-${crypto.randomUUID().slice(0, 8)}`;
	const registry = env.REGISTRY.getByName(REGISTRY_NAME);
	expect(
		await registry.createTenant({
			name: tenant,
			pools: ["*"],
			defaultPriority: "normal",
			maxPriority: "high",
			weight: 3,
			limits: { maxConcurrent: 1 },
		}),
	).toBe(true);
	const stub = env.POOL.getByName(`openai/${crypto.randomUUID()}`);
	// Its very first request already counts against its own maxConcurrent of 1.
	expect((await stub.acquire(ask({ tenant }))).kind).toBe("admitted");
	expect((await stub.acquire(ask({ tenant }))).kind).toBe("rejected");
	expect((await stub.status()).tenants[tenant]).toMatchObject({ inFlight: 1, maxConcurrent: 1 });
	// A name no registry or configuration knows has weight 1 and no limits of its own.
	const stranger = `unknown-${crypto.randomUUID().slice(0, 8)}`;
	expect((await stub.acquire(ask({ tenant: stranger }))).kind).toBe("admitted");
	expect((await stub.acquire(ask({ tenant: stranger }))).kind).toBe("admitted");
	expect((await stub.status()).tenants[stranger]?.maxConcurrent).toBeUndefined();
});

it("lets a configured tenant win a name clash with a runtime one", async () => {
	const registry = env.REGISTRY.getByName(REGISTRY_NAME);
	// The admin API refuses this name; a registry written before the configuration gained it has it.
	await registry.createTenant({
		name: "team-b",
		pools: ["*"],
		defaultPriority: "normal",
		maxPriority: "high",
		weight: 1,
		limits: { maxConcurrent: 1 },
	});
	const stub = env.POOL.getByName(`openai/${crypto.randomUUID()}`);
	// A runtime tenant's first request has the pool read the whole registry, team-b's entry too.
	expect((await stub.acquire(ask({ tenant: "someone-new" }))).kind).toBe("admitted");
	expect((await stub.acquire(ask({ tenant: "team-b" }))).kind).toBe("admitted");
	expect((await stub.acquire(ask({ tenant: "team-b" }))).kind).toBe("admitted");
});
