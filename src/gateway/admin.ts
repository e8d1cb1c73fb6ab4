// /admin/*: live pool state for operators, behind an admin token (compared by its SHA-256). The
// dashboard that reads it is static (public/admin.html): its files are public, its data is not.
import { Hono } from "hono/tiny";
import { loadConfig } from "../config.ts";
import { adminBatches } from "./admin-batches.ts";
import { adminTenants } from "./admin-tenants.ts";
import { gatewayKeyOf, sha256Hex } from "./auth.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

export const admin = new Hono<GatewayEnv>();

// The dashboard's own files are static assets (public/, headers in public/_headers); its answers
// here are data: never cached, framed, sniffed or rendered as a page.
admin.use("*", async function adminSecurityHeaders(c, next) {
	await next();
	c.res.headers.set("cache-control", "no-store");
	c.res.headers.set("x-frame-options", "DENY");
	c.res.headers.set("referrer-policy", "no-referrer");
	c.res.headers.set("x-content-type-options", "nosniff");
	c.res.headers.set("content-security-policy", "default-src 'none'; frame-ancestors 'none'");
});

admin.use("*", async function requireAdminToken(c, next) {
	const loaded = loadConfig(c.env.TOLLBOOTH_CONFIG);
	if (!loaded.ok) throw new GatewayError(500, loaded.message, "bad_config");
	const token = gatewayKeyOf(c.req.raw.headers);
	if (!token || !loaded.config.adminKeySha256.includes(sha256Hex(token))) {
		throw new GatewayError(
			401,
			"The admin API needs an admin token (adminKeySha256 in TOLLBOOTH_CONFIG).",
			"unknown_admin_key",
		);
	}
	c.set("config", loaded.config);
	await next();
});

admin.get("/pools", async (c) => {
	const pools = await Promise.all(
		c.get("config").pools.map(async (pool) => ({
			name: pool.name,
			provider: pool.provider,
			status: await c.env.POOL.getByName(pool.name).status(),
		})),
	);
	return c.json({ nowMs: Date.now(), pools });
});

admin.get("/pools/:name", async (c) => {
	const pool = c.get("config").pools.find((candidate) => candidate.name === c.req.param("name"));
	if (!pool) throw new GatewayError(404, `No pool named "${c.req.param("name")}".`, "unknown_pool");
	const status = await c.env.POOL.getByName(pool.name).status();
	return c.json({
		name: pool.name,
		provider: pool.provider,
		baseUrl: pool.baseUrl,
		limits: pool.limits,
		status,
	});
});

/** The pool's events per second over the last five minutes (admissions, refusals by reason,
 * provider 429s, retries), counted by its Pool object since that instance started. */
admin.get("/pools/:name/series", async (c) => {
	const pool = c.get("config").pools.find((candidate) => candidate.name === c.req.param("name"));
	if (!pool) throw new GatewayError(404, `No pool named "${c.req.param("name")}".`, "unknown_pool");
	const series = await c.env.POOL.getByName(pool.name).series();
	return c.json({ name: pool.name, ...series });
});

// Runtime tenants, keys and usage (admin-tenants.ts), behind the same token.
admin.route("/", adminTenants);
// Every tenant's batches (admin-batches.ts), behind the same token.
admin.route("/", adminBatches);
