// /admin/*: live pool state for operators, behind an admin token (compared by its SHA-256).
import { Hono } from "hono";
import { loadConfig } from "../config.ts";
import { gatewayKeyOf, sha256Hex } from "./auth.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

export const admin = new Hono<GatewayEnv>();

admin.use("*", async function requireAdminToken(c, next) {
	const loaded = loadConfig(c.env.TOLLBOOTH_CONFIG);
	if (!loaded.ok) throw new GatewayError(500, loaded.message, "bad_config");
	const token = gatewayKeyOf(c.req.raw.headers);
	if (!token || !loaded.config.adminKeySha256.includes(await sha256Hex(token))) {
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
		c.var.config.pools.map(async (pool) => ({
			name: pool.name,
			provider: pool.provider,
			status: await c.env.POOL.getByName(pool.name).status(),
		})),
	);
	return c.json({ pools });
});

admin.get("/pools/:name", async (c) => {
	const pool = c.var.config.pools.find((candidate) => candidate.name === c.req.param("name"));
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
