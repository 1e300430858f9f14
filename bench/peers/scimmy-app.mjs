// A SCIM server built the way SCIMMY's documentation describes: SCIMMY's User resource (with the
// enterprise extension Entra sends) behind scimmy-routers on express, storing users in memory
// (SCIMMY has no storage of its own; a Map is the smallest one). Filters are evaluated by
// SCIMMY's own Filter.match over the stored users, as its docs show for in-memory data.
//
//   node scimmy-app.mjs PORT TOKEN      (run from a folder whose node_modules holds scimmy,
//                                        scimmy-routers and express; bench/run.sh does this)
import {randomUUID} from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const [port, token] = process.argv.slice(2);
const users = new Map(); // id -> stored user (plain object)
const byName = new Map(); // userName -> id (uniqueness without a scan; exact, as SCIMMY compares)

const stored = (id) => {
  const user = users.get(id);
  if (!user) throw new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
  return user;
};

SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false))
  .ingress((resource, instance) => {
    const now = new Date().toISOString();
    const data = JSON.parse(JSON.stringify(instance));
    const holder = byName.get(data.userName);
    if (holder !== undefined && holder !== resource.id)
      throw new SCIMMY.Types.Error(409, "uniqueness", "userName is taken");
    if (resource.id) {
      const old = stored(resource.id);
      const user = {...data, id: old.id, meta: {...old.meta, lastModified: now}};
      if (old.userName !== user.userName) byName.delete(old.userName);
      users.set(user.id, user);
      byName.set(user.userName, user.id);
      return user;
    }
    const user = {...data, id: randomUUID(), meta: {created: now, lastModified: now}};
    users.set(user.id, user);
    byName.set(user.userName, user.id);
    return user;
  })
  .egress((resource) => {
    if (resource.id) return stored(resource.id);
    const all = [...users.values()];
    return resource.filter ? resource.filter.match(all) : all;
  })
  .degress((resource) => {
    byName.delete(stored(resource.id).userName);
    users.delete(resource.id);
  });

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
  type: "bearer",
  handler: (request) => {
    if (request.header("Authorization") !== `Bearer ${token}`) throw new Error("Not signed in");
    return "bench";
  },
}));
const server = app.listen(Number(port), "127.0.0.1", () => console.log(`listening on 127.0.0.1:${server.address().port}`));
