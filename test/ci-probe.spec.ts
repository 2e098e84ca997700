// CI probe (added with .ci/run): proves which Node runs the suite.
// .ci/run exports SOCKSERVE_EXPECT_NODE_MAJOR=24 for its second run (jest on Node 24);
// in the plain `npm test` run the variable is unset and only the trivial check runs.
test('runs under the expected node', () => {
  const want = process.env.SOCKSERVE_EXPECT_NODE_MAJOR;
  console.log(`ci-probe: node ${process.version}, expected major ${want ?? '(any)'}`);
  if (want) expect(process.versions.node.split('.')[0]).toBe(want);
  expect(1 + 1).toBe(2);
});
