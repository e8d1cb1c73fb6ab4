// /admin/tenants: runtime tenants, their gateway keys and their exact usage, over the registry and
// budget Durable Objects; mounted by admin.ts behind its admin token. Errors: 4xx in one shape,
// { error: { message, type, param (the field at fault), code } }.
import { Hono } from "hono/tiny";
import { type Config, type TenantPolicy, tenantPolicyIssues } from "../config.ts";
import { REGISTRY_NAME, type TenantRecord } from "../durable/registry.ts";
import { keyBodySchema, parseBody, tenantBodySchema, usageQuerySchema } from "./admin-schemas.ts";
import { sha256Hex } from "./auth.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";
import { readBody } from "./request-body.ts";
import { forgetCachedKeys, RUNTIME_KEY_PREFIX } from "./tenant-keys.ts";

export const adminTenants = new Hono<GatewayEnv>();

/** Largest admin body accepted. */
const MAX_ADMIN_BODY_BYTES = 64 * 1024;
/** Characters of a key shown after it is issued, e.g. "tb_live_ab12". */
const VISIBLE_KEY_CHARS = RUNTIME_KEY_PREFIX.length + 4;

function fail(status: number, message: string, code: string, param: string | null = null): never {
	throw new GatewayError(status, message, code, { details: { param, code } });
}

async function jsonBody(request: Request, optional = false): Promise<unknown> {
	const raw = await readBody(request, MAX_ADMIN_BODY_BYTES);
	if (raw === undefined || raw.byteLength === 0) {
		if (optional) return {};
		fail(400, "The body must be a JSON object.", "invalid_body");
	}
	try {
		return JSON.parse(new TextDecoder().decode(raw));
	} catch {
		return fail(400, "The body is not valid JSON.", "invalid_json");
	}
}

/** The checks a tenant's body needs beyond its schema (the configuration's own): the first fails. */
function checkPolicy(policy: TenantPolicy, config: Config): void {
	tenantPolicyIssues(policy, config, (path, message) => {
		const param = path.join(".");
		fail(400, `${param}: ${message}.`, "invalid_body", param);
	});
}

const registryOf = (env: Env) => env.REGISTRY.getByName(REGISTRY_NAME);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function configuredTenant(config: Config, name: string) {
	const tenant = config.tenants.find((candidate) => candidate.name === name);
	if (!tenant) return undefined;
	const { keySha256: _, ...policy } = tenant;
	return policy;
}

function runtimeView(record: TenantRecord) {
	return {
		...record.policy,
		source: "runtime",
		createdAt: iso(record.createdMs),
		updatedAt: iso(record.updatedMs),
	};
}

/** A runtime tenant by name, or 404 (409 for a configured one: it is edited in the configuration). */
async function runtimeTenant(env: Env, config: Config, name: string): Promise<TenantRecord> {
	if (configuredTenant(config, name)) {
		fail(
			409,
			`Tenant "${name}" is defined in TOLLBOOTH_CONFIG: change it there.`,
			"configured_tenant",
			"tenant",
		);
	}
	const record = await registryOf(env).getTenant(name);
	if (!record) fail(404, `No tenant named "${name}".`, "unknown_tenant", "tenant");
	return record;
}

adminTenants.get("/tenants", async (c) => {
	const runtime = await registryOf(c.env).listTenants();
	const configured = c.get("config").tenants.map((tenant) => ({
		...configuredTenant(c.get("config"), tenant.name),
		source: "config",
	}));
	const shadowed = new Set(configured.map((tenant) => tenant.name));
	return c.json({
		tenants: [
			...configured,
			...runtime.filter((record) => !shadowed.has(record.policy.name)).map(runtimeView),
		],
	});
});

adminTenants.post("/tenants", async (c) => {
	const policy = parseBody(tenantBodySchema, await jsonBody(c.req.raw));
	checkPolicy(policy, c.get("config"));
	if (configuredTenant(c.get("config"), policy.name)) {
		fail(409, `Tenant "${policy.name}" is defined in TOLLBOOTH_CONFIG.`, "name_taken", "name");
	}
	if (!(await registryOf(c.env).createTenant(policy))) {
		fail(409, `A tenant named "${policy.name}" exists already.`, "name_taken", "name");
	}
	const record = await registryOf(c.env).getTenant(policy.name);
	return c.json(record ? runtimeView(record) : policy, 201);
});

adminTenants.get("/tenants/:tenant", async (c) => {
	const name = c.req.param("tenant");
	const configured = configuredTenant(c.get("config"), name);
	if (configured) return c.json({ ...configured, source: "config" });
	const record = await registryOf(c.env).getTenant(name);
	if (!record) fail(404, `No tenant named "${name}".`, "unknown_tenant", "tenant");
	return c.json(runtimeView(record));
});

adminTenants.patch("/tenants/:tenant", async (c) => {
	const record = await runtimeTenant(c.env, c.get("config"), c.req.param("tenant"));
	const patch = await jsonBody(c.req.raw);
	if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
		fail(400, "The body must be a JSON object of the fields to change.", "invalid_body");
	}
	if ("name" in patch && patch.name !== record.policy.name) {
		fail(400, "name: a tenant cannot be renamed.", "invalid_body", "name");
	}
	// null removes an optional field (e.g. { "budget": null }); a required one is then reported.
	const merged = Object.entries({ ...record.policy, ...patch }).filter(
		([, value]) => value !== null,
	);
	const policy = parseBody(tenantBodySchema, Object.fromEntries(merged));
	checkPolicy(policy, c.get("config"));
	const updated = await registryOf(c.env).updateTenant(policy);
	forgetCachedKeys(policy.name);
	return c.json(updated ? runtimeView(updated) : policy);
});

adminTenants.delete("/tenants/:tenant", async (c) => {
	const record = await runtimeTenant(c.env, c.get("config"), c.req.param("tenant"));
	await registryOf(c.env).deleteTenant(record.policy.name);
	forgetCachedKeys(record.policy.name);
	return c.body(null, 204);
});

adminTenants.post("/tenants/:tenant/keys", async (c) => {
	const record = await runtimeTenant(c.env, c.get("config"), c.req.param("tenant"));
	const body = parseBody(keyBodySchema, await jsonBody(c.req.raw, true));
	const expiresAtMs = body.expiresAt === undefined ? null : Date.parse(body.expiresAt);
	if (expiresAtMs !== null && expiresAtMs <= Date.now()) {
		fail(400, "expiresAt: must be in the future.", "invalid_body", "expiresAt");
	}
	const random = crypto.getRandomValues(new Uint8Array(24));
	const key = `${RUNTIME_KEY_PREFIX}${[...random].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
	const prefix = `${key.slice(0, VISIBLE_KEY_CHARS)}…`;
	const id = `key_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
	await registryOf(c.env).addKey(record.policy.name, {
		id,
		hash: sha256Hex(key),
		prefix,
		expiresAtMs,
	});
	return c.json({ id, key, prefix, expiresAt: iso(expiresAtMs) }, 201);
});

adminTenants.get("/tenants/:tenant/keys", async (c) => {
	const record = await runtimeTenant(c.env, c.get("config"), c.req.param("tenant"));
	const keys = await registryOf(c.env).listKeys(record.policy.name);
	return c.json({
		keys: keys.map((key) => ({
			id: key.id,
			prefix: key.prefix,
			createdAt: iso(key.createdMs),
			expiresAt: iso(key.expiresAtMs),
			lastUsedAt: iso(key.lastUsedMs),
		})),
	});
});

adminTenants.delete("/tenants/:tenant/keys/:id", async (c) => {
	const record = await runtimeTenant(c.env, c.get("config"), c.req.param("tenant"));
	const id = c.req.param("id");
	if (!(await registryOf(c.env).revokeKey(record.policy.name, id))) {
		fail(404, `Tenant "${record.policy.name}" has no key "${id}".`, "unknown_key_id", "id");
	}
	forgetCachedKeys(record.policy.name);
	return c.body(null, 204);
});

adminTenants.get("/tenants/:tenant/usage", async (c) => {
	const name = c.req.param("tenant");
	if (!configuredTenant(c.get("config"), name) && !(await registryOf(c.env).getTenant(name))) {
		fail(404, `No tenant named "${name}".`, "unknown_tenant", "tenant");
	}
	const query = parseBody(usageQuerySchema, c.req.query(), "query");
	if (query.from > query.to) fail(400, "query.from: is after to.", "invalid_query", "query.from");
	const rows = await c.env.BUDGET.getByName(name).usage(query.from, query.to, query.by === "user");
	return c.json({ tenant: name, from: query.from, to: query.to, rows });
});
