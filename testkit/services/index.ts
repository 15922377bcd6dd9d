export { freePort, waitForPort } from "./free-port.js";
export { redisMissing, startRedis, type RedisServer } from "./redis.js";
export { postgresMissing, startPostgres, type PostgresServer } from "./postgres.js";
