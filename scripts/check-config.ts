// `npm run check-config [-- --env dev]`: validates TOLLBOOTH_CONFIG as the Worker would see it
// (wrangler.toml's top level, which is production, or an environment's; for local dev with
// .dev.vars on top) before a deploy, and says what is wrong with the message a request would get.
import { parseArgs } from "node:util";
import { unstable_getVarsForDev, unstable_readConfig } from "wrangler";
import { parseConfig } from "../src/config.ts";

const { values } = parseArgs({
	options: { env: { type: "string" }, config: { type: "string", default: "wrangler.toml" } },
});
const config = unstable_readConfig({ config: values.config, env: values.env });
const vars =
	values.env === "dev"
		? unstable_getVarsForDev(config.configPath, undefined, config.vars, "dev", true)
		: config.vars;
const raw = vars.TOLLBOOTH_CONFIG;
const result = parseConfig(
	typeof raw === "object" && raw !== null && "value" in raw ? raw.value : raw,
);
const where =
	values.env === "dev"
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
