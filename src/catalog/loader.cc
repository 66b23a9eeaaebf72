#include "catalog/loader.h"

#include <deque>
#include <fmt/format.h>
#include <set>

#include "base/log.h"
#include "base/url.h"
#include "catalog/parse.h"
#include "catalog/yaml_reader.h"

namespace flow::catalog {
namespace {

// SPEC 1.1: a source fetched over HTTP may refer only to other remote sources, as a browser
// would allow, never to a file of this machine (which a hostile server could otherwise
// have read and shown in messages). The rule is by URL: a URL that --resource-map serves
// from a directory is still remote.
bool LocalFromRemote(const std::string& from_url, const std::string& url) {
  return IsHttpUrl(from_url) && !IsHttpUrl(url);
}

void RefuseLocal(Diagnostics* diags, const std::string& from_file, Mark mark, const char* what,
                 const std::string& url) {
  diags->Error(from_file, mark,
               fmt::format("cannot read {} `{}`: a source fetched over HTTP may refer only to "
                           "remote (http:// or https://) sources, never to local files",
                           what, DisplayName(url)),
               "", "serve it over HTTP as well, or make the catalog that refers to it local");
}

struct Request {
  std::string url;
  std::string kind;  // "catalog" or "schema"
  // Who asked for it, for "cannot read" errors. Empty file for the root.
  std::string from_file;
  Mark from_mark;
  std::string what;  // "import", "schema", "$ref"
};

class Loader {
 public:
  Loader(Fetcher* fetcher, Diagnostics* diags, Loaded* out)
      : fetcher_(fetcher), diags_(diags), out_(out) {}

  void Run(const std::string& root_url) {
    out_->catalog.root_url = root_url;
    std::deque<Request> queue{{root_url, "catalog", "", {}, "root"}};
    std::set<std::string> requested{root_url};
    while (!queue.empty()) {
      Request r = std::move(queue.front());
      queue.pop_front();
      SourceFile* f = Read(r);
      if (!f) continue;
      ParseImports(f, diags_);
      for (size_t i = 0; i < f->imports.size(); ++i) {
        if (LocalFromRemote(f->url, f->imports[i])) {
          RefuseLocal(diags_, f->display, f->import_marks[i], "import", f->imports[i]);
          continue;
        }
        if (requested.insert(f->imports[i]).second) {
          queue.push_back({f->imports[i], "catalog", f->display, f->import_marks[i], "import"});
        }
      }
    }
    // Sections are parsed after all files are read, in load order.
    size_t catalog_files = out_->catalog.files.size();
    for (size_t i = 0; i < catalog_files; ++i) {
      ParseSections(*out_->catalog.files[i], &out_->catalog, diags_);
    }
    LoadSchemas();
  }

 private:
  SourceFile* Read(const Request& r) {
    Log(LogLevel::kDebug, "reading", {{"url", r.url}, {"kind", r.what}});
    auto content = fetcher_->Fetch(r.url);
    if (!content) {
      if (r.from_file.empty()) {
        diags_->Error(DisplayName(r.url), {}, fmt::format("cannot read catalog source: {}",
                                                          content.error().message),
                      "", "pass the root file with --source");
      } else {
        diags_->Error(r.from_file, r.from_mark,
                      fmt::format("cannot read {} `{}`: {}", r.what, DisplayName(r.url),
                                  content.error().message),
                      "", IsHttpUrl(r.url) ? "offline? map the URL to a local directory with "
                                             "--resource-map PREFIX=DIR"
                                           : "");
      }
      return nullptr;
    }
    auto f = std::make_unique<SourceFile>();
    f->url = r.url;
    f->display = DisplayName(r.url);
    f->kind = r.kind;
    f->content = std::move(content.value());
    auto root = ReadYaml(f->content, f->display, diags_);
    if (!root) return nullptr;
    f->root = std::move(*root);
    SourceFile* raw = f.get();
    out_->index.AddResource(f->url, &f->root);
    out_->catalog.files.push_back(std::move(f));
    return raw;
  }

  void Want(const std::string& url_with_fragment, const std::string& from_file, Mark from_mark,
            const char* what) {
    std::string url, frag;
    SplitFragment(url_with_fragment, &url, &frag);
    if (url.empty() || out_->index.HasResource(url) || failed_.count(url)) return;
    SourceFile* f = Read(Request{url, "schema", from_file, from_mark, what});
    if (!f) {
      failed_.insert(url);
      return;
    }
    std::vector<schema::MissingResource> missing;
    out_->index.IndexSchema(schema::SchemaLoc{&f->root, url, "", url}, &missing);
    WantAll(missing);
  }

  // Loads what `$ref`s name. A local file named from a remote schema is not read
  // (Index::CheckRefs reports it).
  void WantAll(const std::vector<schema::MissingResource>& missing) {
    for (const auto& m : missing) {
      if (LocalFromRemote(m.resource, m.url)) continue;
      Want(m.url, DisplayName(m.resource), m.ref->mark(), "$ref");
    }
  }

  void Spec(const SchemaSpec& s) {
    if (!s.present) return;
    if (s.inline_node) {  // a resource of its own (SPEC 1.4)
      std::vector<schema::MissingResource> missing;
      out_->index.IndexInlineSchema(
          schema::InlineSchemaLoc(s.inline_node, s.where.url, s.where.pointer), &missing);
      WantAll(missing);
    } else {
      // A schema named by an inline schema's URL lives in its source, which is loaded.
      std::string url, frag, file, ptr;
      SplitFragment(s.url, &url, &frag);
      if (LocalFromRemote(s.where.url, url)) {
        RefuseLocal(diags_, s.where.file, s.where.mark, "schema", url);
        return;
      }
      Want(schema::SplitInlineSchemaUrl(url, &file, &ptr) ? file : s.url, s.where.file,
           s.where.mark, "schema");
    }
  }

  void LoadSchemas() {
    for (const auto& c : out_->catalog.collections) {
      Spec(c.schema);
      if (!c.derivation) continue;
      Spec(c.derivation->register_schema);
      for (const auto& t : c.derivation->transforms) Spec(t.source_schema);
    }
  }

  Fetcher* fetcher_;
  Diagnostics* diags_;
  Loaded* out_;
  std::set<std::string> failed_;
};

}  // namespace

std::unique_ptr<Loaded> LoadCatalog(const std::string& root_url, Fetcher* fetcher,
                                    Diagnostics* diags) {
  auto out = std::make_unique<Loaded>();
  Loader l(fetcher, diags, out.get());
  l.Run(root_url);
  return out;
}

}  // namespace flow::catalog
