// The loops of WPT's url-constructor.any.js, url-origin.any.js, url-statics-canparse.any.js
// and url-setters.any.js, which fetch() their JSON; here the runner passes it in.
// Test names are WPT's own.

function runURLTests(urlTests) {
  for (const expected of urlTests) {
    if (typeof expected === "string") continue; // a comment
    const base = expected.base !== null ? expected.base : undefined;
    const where = base ? `against <${base}>` : "without base";

    test(function () {
      if (expected.failure) {
        assert_throws_js(TypeError, function () {
          new URL(expected.input, base);
        });
        return;
      }
      const url = new URL(expected.input, base);
      assert_equals(url.href, expected.href, "href");
      assert_equals(url.protocol, expected.protocol, "protocol");
      assert_equals(url.username, expected.username, "username");
      assert_equals(url.password, expected.password, "password");
      assert_equals(url.host, expected.host, "host");
      assert_equals(url.hostname, expected.hostname, "hostname");
      assert_equals(url.port, expected.port, "port");
      assert_equals(url.pathname, expected.pathname, "pathname");
      assert_equals(url.search, expected.search, "search");
      if ("searchParams" in expected) {
        assert_true("searchParams" in url);
        assert_equals(url.searchParams.toString(), expected.searchParams, "searchParams");
      }
      assert_equals(url.hash, expected.hash, "hash");
    }, `Parsing: <${expected.input}> ${where}`);

    if ("origin" in expected) {
      test(function () {
        assert_equals(new URL(expected.input, base).origin, expected.origin, "origin");
      }, `Origin parsing: <${expected.input}> ${where}`);
    }

    test(function () {
      assert_equals(URL.canParse(expected.input, base), !expected.failure);
    }, `URL.canParse(${expected.input}, ${base})`);
  }
}

function runSetterTests(data) {
  for (const attributeToBeSet in data) {
    if (attributeToBeSet === "comment") continue;
    for (const testCase of data[attributeToBeSet]) {
      let name = `Setting <${testCase.href}>.${attributeToBeSet} = '${testCase.new_value}'`;
      if ("comment" in testCase) name += ` ${testCase.comment}`;
      test(function () {
        const url = new URL(testCase.href);
        url[attributeToBeSet] = testCase.new_value;
        for (const attribute in testCase.expected) {
          assert_equals(url[attribute], testCase.expected[attribute]);
        }
      }, `URL: ${name}`);
    }
  }
}
