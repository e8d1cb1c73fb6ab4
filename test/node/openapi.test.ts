// The admin API's OpenAPI document is a static file generated at build time (npm run openapi): it
// must be the one the current admin schemas give, or the API's published contract lies.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { OPENAPI_FILE, openApiText } from "../../scripts/openapi.ts";

const committed = readFileSync(OPENAPI_FILE, "utf8");

it("public/admin/openapi.json is what `npm run openapi` writes from today's schemas", () => {
	expect(committed, "stale: run `npm run openapi` and commit the file").toBe(openApiText());
});

it("documents every admin route and the budget fields a tenant body takes", () => {
	const doc = JSON.parse(committed) as {
		openapi: string;
		paths: Record<string, unknown>;
		components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
	};
	expect(doc.openapi).toBe("3.1.0");
	expect(Object.keys(doc.paths)).toContain("/admin/tenants/{tenant}/keys/{id}");
	const budget = doc.components.schemas.TenantBody?.properties?.budget as {
		properties: Record<string, unknown>;
	};
	expect(Object.keys(budget.properties)).toEqual(
		expect.arrayContaining([
			"tokensPerDay",
			"costPerMonthUsd",
			"downgradeAt",
			"downgrade",
			"perUser",
			"timeZone",
		]),
	);
});
