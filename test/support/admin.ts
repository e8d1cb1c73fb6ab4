// Calling the admin API through the Worker with the test admin token, and creating a runtime
// tenant with a key of its own (a fresh name per call, so tests never share state).
import { exports } from "cloudflare:workers";
import { TEST_KEYS } from "./test-config.ts";

export function adminCall(
	method: string,
	path: string,
	body?: unknown,
	token: string = TEST_KEYS.admin,
): Promise<Response> {
	return exports.default.fetch(
		new Request(`http://tollbooth.test/admin${path}`, {
			method,
			headers: {
				authorization: `Bearer ${token}`,
				...(body !== undefined && { "content-type": "application/json" }),
			},
			body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
		}),
	);
}

/** Creates a runtime tenant (`pools: ["*"]` plus `fields`) and issues it a key. */
export async function tenantWithKey(
	fields: Record<string, unknown> = {},
): Promise<{ name: string; key: string; keyId: string }> {
	const name = `t-${crypto.randomUUID().slice(0, 8)}`;
	const created = await adminCall("POST", "/tenants", { name, pools: ["*"], ...fields });
	if (created.status !== 201) throw new Error(`tenant: ${created.status} ${await created.text()}`);
	const issued = await adminCall("POST", `/tenants/${name}/keys`, {});
	if (issued.status !== 201) throw new Error(`key: ${issued.status} ${await issued.text()}`);
	const { key, id } = (await issued.json()) as { key: string; id: string };
	return { name, key, keyId: id };
}
