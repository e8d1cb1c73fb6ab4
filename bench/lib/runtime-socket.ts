// The Worker's own socket inside `wrangler dev`. wrangler answers on its port through a proxy Worker
// of its own, in a second workerd process, that a deployed Worker does not have: a request there
// runs that proxy's JavaScript before and after the Worker. The runtime's socket skips it.
import { readdir, readFile, readlink } from "node:fs/promises";
import type { WranglerDev } from "./wrangler-dev.ts";

/** The ids of the workerd processes in wrangler's process group. */
async function workerdProcesses(groupId: number): Promise<number[]> {
	const found: number[] = [];
	for (const entry of await readdir("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
		// "pid (comm) state ppid pgrp ...": the name may hold spaces, so split after its ")".
		const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
		const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
		if (name === "workerd" && group === groupId) found.push(Number(entry));
	}
	return found;
}

/** The loopback ports the given processes listen on, from /proc/net/tcp and their sockets. */
async function loopbackListeners(processIds: readonly number[]): Promise<number[]> {
	const sockets = new Set<string>();
	for (const id of processIds) {
		for (const fd of await readdir(`/proc/${id}/fd`).catch(() => [])) {
			const link = await readlink(`/proc/${id}/fd/${fd}`).catch(() => "");
			const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
			if (inode) sockets.add(inode);
		}
	}
	const LISTEN = "0A";
	const LOOPBACK = "0100007F";
	const ports: number[] = [];
	for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
		const [, local = "", , state, , , , , , inode = ""] = line.trim().split(/\s+/);
		const [address, port = ""] = local.split(":");
		if (state === LISTEN && address === LOOPBACK && sockets.has(inode)) {
			ports.push(Number.parseInt(port, 16));
		}
	}
	return ports;
}

/**
 * http://127.0.0.1:PORT of the socket where workerd serves the Worker itself (it answers `/` as
 * wrangler's port does), or undefined where /proc cannot tell (not Linux, or wrangler changed).
 */
export async function runtimeOrigin(dev: WranglerDev): Promise<string | undefined> {
	const expected = await (await fetch(`${dev.origin}/`)).text();
	const proxyPort = Number(new URL(dev.origin).port);
	const ports = await loopbackListeners(await workerdProcesses(dev.pid)).catch(() => []);
	for (const port of ports) {
		if (port === proxyPort) continue;
		const origin = `http://127.0.0.1:${port}`;
		const answer = await fetch(`${origin}/`, { signal: AbortSignal.timeout(2_000) }).catch(
			() => undefined,
		);
		if (answer === undefined) continue;
		const text = await answer.text();
		if (answer.ok && text === expected) return origin;
	}
	return undefined;
}
