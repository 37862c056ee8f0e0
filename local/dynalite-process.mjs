// Runs dynalite in its own process so DynamoDB work uses another core than the API and the IoT
// emulator. Started by local/dynamodb.ts with fork(); reports its port over IPC and exits when
// its parent goes away. Its files (LevelDB, holding sealed secrets) are private to the owner.
import dynalite from "dynalite";

process.umask(0o077);

const [host, port, path] = process.argv.slice(2);
const server = dynalite({ ...(path ? { path } : {}), createTableMs: 0, updateTableMs: 0, deleteTableMs: 0 });
server.on("error", (error) => {
  process.send?.({ error: error.message });
  process.exit(1);
});
server.listen(Number(port), host, () => process.send?.({ port: server.address().port }));
process.on("disconnect", () => server.close(() => process.exit(0)));
