// KaTeX 0.16.47 is vendored in docs/assets/katex/ (from `npm pack katex@0.16`: katex.min.js,
// katex.min.css, contrib/auto-render.min.js, fonts/*.woff2, LICENSE). The stylesheet's
// .woff and .ttf fallbacks were removed: every browser the site supports loads woff2.
//
// Renders the math that pymdownx.arithmatex (generic mode) leaves in
// .arithmatex elements as \( ... \) and \[ ... \], with the KaTeX this site ships.
// Only those elements are scanned, so a dollar sign in prose stays a dollar sign.
// document$ is Material's page observable: it also fires after instant navigation.
const mathDelimiters = [
  { left: "\\(", right: "\\)", display: false },
  { left: "\\[", right: "\\]", display: true },
];

function renderMath(element) {
  renderMathInElement(element, {
    delimiters: mathDelimiters,
    // A formula KaTeX cannot parse is reported on the console (the browser test fails on it).
    errorCallback: (message, error) => console.error(message, error),
  });
}

document$.subscribe(({ body }) => {
  body.querySelectorAll(".arithmatex").forEach(renderMath);
});

// Search previews quote page text, formulas included, as \( ... \) source: render
// each result as the search adds it.
const searchResults = document.querySelector(".md-search-result__list");
if (searchResults) {
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      mutation.addedNodes.forEach((node) => node.nodeType === Node.ELEMENT_NODE && renderMath(node));
    }
  }).observe(searchResults, { childList: true });
}
