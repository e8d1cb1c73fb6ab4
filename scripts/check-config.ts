// `npm run check-config [-- --env dev]`: validates TOLLBOOTH_CONFIG as the Worker would see it
// (wrangler.toml's top level, which is production, or an environment's; for local dev with
// .dev.vars on top), says what is wrong with the message a request would get, and warns about
// what parses but would fail once deployed (scripts/config-warnings.ts).
import { parseArgs } from "node:util";
import { unstable_getVarsForDev, unstable_readConfig } from "wrangler";
import { parseConfig } from "../src/config.ts";
import { configWarnings } from "./config-warnings.ts";

const { values } = parseArgs({
	options: { env: { type: "string" }, config: { type: "string", default: "wrangler.toml" } },
});
const config = unstable_readConfig(
	{ config: values.config, env: values.env },
	{ hideWarnings: true },
);
const isDev = values.env === "dev";
const vars: Record<string, unknown> = isDev
	? unstable_getVarsForDev(config.configPath, undefined, config.vars, "dev", true)
	: config.vars;
/** A var as the Worker gets it (getVarsForDev wraps each in { value }). */
const unwrapped = (raw: unknown) =>
	typeof raw === "object" && raw !== null && "value" in raw ? raw.value : raw;
const result = parseConfig(unwrapped(vars.TOLLBOOTH_CONFIG));
const where = isDev
	? "local dev ([env.dev] + .dev.vars)"
	: values.env
		? `[env.${values.env}]`
		: "production (wrangler.toml top level)";

if (!result.ok) {
	console.error(`✗ ${where}: ${result.message}`);
	process.exit(1);
}
const { pools, tenants } = result.config;
console.log(`✓ ${where}: ${pools.length} pool(s), ${tenants.length} tenant(s)`);
for (const pool of pools) {
	const { requestsPerMinute, tokensPerMinute, maxConcurrent } = pool.limits;
	console.log(
		`  pool ${pool.name}: ${pool.provider} at ${pool.baseUrl}, key from secret ${pool.apiKeySecret}, ${requestsPerMinute} rpm, ${tokensPerMinute} tpm, ${maxConcurrent} concurrent`,
	);
}
for (const tenant of tenants) {
	console.log(
		`  tenant ${tenant.name}: ${tenant.keySha256.length} key(s), pools ${tenant.pools.join(", ")}, priority ${tenant.defaultPriority}..${tenant.maxPriority}`,
	);
}
const plainVars = Object.fromEntries(
	Object.entries(vars).map(([name, raw]) => [name, unwrapped(raw)]),
);
const warnings = configWarnings(result.config, {
	target: isDev ? "dev" : "production",
	vars: plainVars,
});
for (const warning of warnings) {
	console.warn(`⚠ TOLLBOOTH_CONFIG.${warning.path}: ${warning.message}`);
}
