import pkg from "../package.json" with { type: "json" };

/** This node's version, as routers are told it. */
export const NODE_VERSION: string = pkg.version;
