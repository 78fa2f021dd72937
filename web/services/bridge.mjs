// Tells the bridge demo pages which origins play which part: the parent page
// is served on the first port, the child on the second (same site) or on
// localhost:<second port> (cross site). Each page asks its own origin, so the
// child never takes its allowlist from the URL someone embedded it with.
export default async function install(ctx) {
  ctx.route('/api/bridge/origins', (req, res) => {
    const [p1, p2] = ctx.ports;
    const body = JSON.stringify({
      parent: `http://${ctx.host}:${p1}`,
      child: `http://${ctx.host}:${p2}`,
      crossSiteChild: `http://localhost:${p2}`,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
    return true;
  });
}
