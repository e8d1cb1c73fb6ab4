// `npm run admin -- <command>`: the operator's client for the admin API (README "Tenants, keys and
// budgets"). The gateway's URL and the admin token come from TOLLBOOTH_URL and
// TOLLBOOTH_ADMIN_TOKEN (or --url / --token; a token on the command line stays in shell history).
import { parseArgs } from "node:util";

const USAGE = `usage: npm run admin -- <command> [options]
  tenants list
  tenants show <tenant>
  tenants create <tenant> [--pools openai,anthropic] [--max-priority high] [--weight 1]
  tenants delete <tenant>
  budget set <tenant> [--tokens-per-day N] [--tokens-per-month N] [--cost-per-day-usd X]
                      [--cost-per-month-usd X] [--downgrade-at 0.9] [--downgrade gpt-4o=gpt-4o-mini ...]
                      [--per-user-tokens-per-day N] [--per-user-cost-per-day-usd X] [--time-zone Europe/Paris]
  budget clear <tenant>
  keys create <tenant> [--expires-at 2027-01-01T00:00:00Z]
  keys list <tenant>
  keys revoke <tenant> <key id>
  usage <tenant> [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--by-user]
options: --url (TOLLBOOTH_URL, default http://127.0.0.1:8787), --token (TOLLBOOTH_ADMIN_TOKEN)`;

const { values, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		url: { type: "string" },
		token: { type: "string" },
		pools: { type: "string" },
		"max-priority": { type: "string" },
		weight: { type: "string" },
		"tokens-per-day": { type: "string" },
		"tokens-per-month": { type: "string" },
		"cost-per-day-usd": { type: "string" },
		"cost-per-month-usd": { type: "string" },
		"downgrade-at": { type: "string" },
		downgrade: { type: "string", multiple: true },
		"per-user-tokens-per-day": { type: "string" },
		"per-user-cost-per-day-usd": { type: "string" },
		"time-zone": { type: "string" },
		"expires-at": { type: "string" },
		from: { type: "string" },
		to: { type: "string" },
		"by-user": { type: "boolean", default: false },
	},
});

const baseUrl = (values.url ?? process.env.TOLLBOOTH_URL ?? "http://127.0.0.1:8787").replace(
	/\/$/,
	"",
);
const token = values.token ?? process.env.TOLLBOOTH_ADMIN_TOKEN;

function fail(message: string): never {
	console.error(message);
	process.exit(1);
}

/** Calls the admin API; prints its JSON answer, or its error (with the field at fault) and exits 1. */
async function call(method: string, path: string, body?: unknown): Promise<unknown> {
	if (!token) fail("Set TOLLBOOTH_ADMIN_TOKEN (or --token) to an admin token of the gateway.");
	const response = await fetch(`${baseUrl}/admin${path}`, {
		method,
		headers: {
			authorization: `Bearer ${token}`,
			...(body !== undefined && { "content-type": "application/json" }),
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	if (response.status === 204) return undefined;
	const json = (await response.json().catch(() => undefined)) as
		| { error?: { message?: string; param?: string | null } }
		| undefined;
	if (!response.ok) {
		const param = json?.error?.param ? ` (field: ${json.error.param})` : "";
		fail(`${method} ${path}: ${response.status} ${json?.error?.message ?? ""}${param}`);
	}
	return json;
}

const number = (name: string, value: string | undefined): number | undefined => {
	if (value === undefined) return undefined;
	const parsed = Number(value);
	if (!Number.isFinite(parsed)) fail(`--${name} must be a number, got "${value}"`);
	return parsed;
};

/** The options given, without the ones left out: only they change. */
function defined(fields: Record<string, unknown>): Record<string, unknown> {
	return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function budgetFromOptions(): Record<string, unknown> {
	const downgrade = Object.fromEntries(
		(values.downgrade ?? []).map((pair) => {
			const [from, to] = pair.split("=");
			if (!from || !to) fail(`--downgrade takes model=cheaper-model, got "${pair}"`);
			return [from, to];
		}),
	);
	const perUser = defined({
		tokensPerDay: number("per-user-tokens-per-day", values["per-user-tokens-per-day"]),
		costPerDayUsd: number("per-user-cost-per-day-usd", values["per-user-cost-per-day-usd"]),
	});
	return defined({
		tokensPerDay: number("tokens-per-day", values["tokens-per-day"]),
		tokensPerMonth: number("tokens-per-month", values["tokens-per-month"]),
		costPerDayUsd: number("cost-per-day-usd", values["cost-per-day-usd"]),
		costPerMonthUsd: number("cost-per-month-usd", values["cost-per-month-usd"]),
		downgradeAt: number("downgrade-at", values["downgrade-at"]),
		downgrade: Object.keys(downgrade).length > 0 ? downgrade : undefined,
		perUser: Object.keys(perUser).length > 0 ? perUser : undefined,
		timeZone: values["time-zone"],
	});
}

const today = () => new Date().toISOString().slice(0, 10);
const print = (value: unknown) => {
	if (value !== undefined) console.log(JSON.stringify(value, null, 2));
};

async function main(): Promise<void> {
	const [group, action, tenant, extra] = positionals;
	const path = tenant === undefined ? "" : `/tenants/${encodeURIComponent(tenant)}`;
	const needTenant = () => tenant ?? fail(USAGE);
	switch (`${group} ${group === "usage" ? "" : action}`.trim()) {
		case "tenants list":
			return print(await call("GET", "/tenants"));
		case "tenants show":
			needTenant();
			return print(await call("GET", path));
		case "tenants create":
			needTenant();
			return print(
				await call(
					"POST",
					"/tenants",
					defined({
						name: tenant,
						pools: values.pools?.split(",") ?? ["*"],
						maxPriority: values["max-priority"],
						weight: number("weight", values.weight),
					}),
				),
			);
		case "tenants delete":
			needTenant();
			await call("DELETE", path);
			return console.log(`deleted tenant ${tenant}`);
		case "budget set": {
			needTenant();
			const current = (await call("GET", path)) as { budget?: Record<string, unknown> };
			const budget = { ...current.budget, ...budgetFromOptions() };
			return print(await call("PATCH", path, { budget }));
		}
		case "budget clear":
			needTenant();
			return print(await call("PATCH", path, { budget: null }));
		case "keys create": {
			needTenant();
			const created = (await call(
				"POST",
				`${path}/keys`,
				defined({ expiresAt: values["expires-at"] }),
			)) as { id: string; key: string; prefix: string; expiresAt: string | null };
			console.log(`id:      ${created.id}`);
			console.log(
				`key:     ${created.key}   (shown once: give it to the tenant, store it nowhere else)`,
			);
			console.log(`expires: ${created.expiresAt ?? "never"}`);
			return;
		}
		case "keys list":
			needTenant();
			return print(await call("GET", `${path}/keys`));
		case "keys revoke":
			needTenant();
			if (!extra) fail(USAGE);
			await call("DELETE", `${path}/keys/${encodeURIComponent(extra)}`);
			return console.log(`revoked key ${extra} (everywhere within 5 s)`);
		case "usage": {
			const name = action ?? fail(USAGE);
			const query = new URLSearchParams({ from: values.from ?? today(), to: values.to ?? today() });
			if (values["by-user"]) query.set("by", "user");
			return print(await call("GET", `/tenants/${encodeURIComponent(name)}/usage?${query}`));
		}
		default:
			fail(USAGE);
	}
}

await main();
