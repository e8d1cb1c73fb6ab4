// /admin/*: live pool state for operators, behind an admin token (compared by its SHA-256), and
// the dashboard page that reads it (its files are public; everything it shows needs the token).
import { Hono } from "hono/tiny";
import { loadConfig } from "../config.ts";
import { adminTenants } from "./admin-tenants.ts";
import { gatewayKeyOf, sha256Hex } from "./auth.ts";
import { DASHBOARD_HTML, DASHBOARD_ICON } from "./dashboard/page.ts";
import { DASHBOARD_JS } from "./dashboard/script.ts";
import { DASHBOARD_CSS } from "./dashboard/styles.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

export const admin = new Hono<GatewayEnv>();

/** The page loads only its own script and stylesheet and talks only to this origin. */
const DASHBOARD_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"connect-src 'self'",
	"img-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

admin.use("*", async function adminSecurityHeaders(c, next) {
	await next();
	c.res.headers.set("cache-control", "no-store");
	c.res.headers.set("x-frame-options", "DENY");
	c.res.headers.set("referrer-policy", "no-referrer");
	c.res.headers.set("x-content-type-options", "nosniff");
	c.res.headers.set("content-security-policy", DASHBOARD_CSP);
});

// The dashboard's own files, before the token check: a browser fetches them without a header.
admin.get("/", (c) => c.body(DASHBOARD_HTML, 200, { "content-type": "text/html; charset=utf-8" }));
admin.get("/app.js", (c) =>
	c.body(DASHBOARD_JS, 200, { "content-type": "text/javascript; charset=utf-8" }),
);
admin.get("/app.css", (c) =>
	c.body(DASHBOARD_CSS, 200, { "content-type": "text/css; charset=utf-8" }),
);
admin.get("/favicon.svg", (c) => c.body(DASHBOARD_ICON, 200, { "content-type": "image/svg+xml" }));

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
	return c.json({ nowMs: Date.now(), pools });
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

/** The pool's events per second over the last five minutes (admissions, refusals by reason,
 * provider 429s, retries), counted by its Pool object since that instance started. */
admin.get("/pools/:name/series", async (c) => {
	const pool = c.var.config.pools.find((candidate) => candidate.name === c.req.param("name"));
	if (!pool) throw new GatewayError(404, `No pool named "${c.req.param("name")}".`, "unknown_pool");
	const series = await c.env.POOL.getByName(pool.name).series();
	return c.json({ name: pool.name, ...series });
});

// Runtime tenants, keys and usage (admin-tenants.ts), behind the same token.
admin.route("/", adminTenants);
