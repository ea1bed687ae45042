// The loader's view of one YAML mapping: typed reads that name the dotted key (`tls.revocation.refresh_seconds`)
// and the file in every error. Internal to config/ (loader.cc and the section parsers beside it).
#pragma once

#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace easedge::config {

// A YAML node with the dotted key path that led to it, so every error can name its key.
class Section {
public:
  Section(const std::filesystem::path& file, YAML::Node node, std::string path)
      : file_(file), node_(std::move(node)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw ConfigError(file_, key, problem);
  }
  std::string key_of(const std::string& name) const { return path_.empty() ? name : path_ + "." + name; }

  // Every key present must be one of `known`.
  void only(std::initializer_list<const char*> known) const {
    if (!node_.IsMap()) fail(path_, "expected a mapping");
    std::set<std::string> allowed(known.begin(), known.end());
    for (const auto& entry : node_) {
      auto name = entry.first.as<std::string>();
      if (!allowed.count(name)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(key_of(name), "unknown key (known here: " + list + ")");
      }
    }
  }

  bool has(const std::string& name) const { return node_[name] && !node_[name].IsNull(); }
  YAML::Node raw(const std::string& name) const { return node_[name]; }

  std::optional<Section> section(const std::string& name) const {
    if (!has(name)) return std::nullopt;
    Section child(file_, node_[name], key_of(name));
    if (!child.node_.IsMap()) fail(key_of(name), "expected a mapping");
    return child;
  }

  std::string string(const std::string& name, const std::string& fallback = {}) const {
    if (!has(name)) return fallback;
    auto value = node_[name];
    if (!value.IsScalar()) fail(key_of(name), "expected a string");
    return value.as<std::string>();
  }

  std::string required_string(const std::string& name) const {
    if (!has(name)) fail(key_of(name), "is required");
    auto value = string(name);
    if (value.empty()) fail(key_of(name), "must not be empty");
    return value;
  }

  bool boolean(const std::string& name, bool fallback) const {
    if (!has(name)) return fallback;
    try {
      return node_[name].as<bool>();
    } catch (const YAML::Exception&) {
      fail(key_of(name), "expected true or false, got '" + node_[name].Scalar() + "'");
    }
  }

  std::uint64_t number(const std::string& name, std::uint64_t fallback, std::uint64_t min,
                       std::uint64_t max) const {
    if (!has(name)) return fallback;
    auto value = node_[name];
    std::uint64_t parsed = 0;
    const auto& text = value.Scalar();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (!value.IsScalar() || ec != std::errc{} || end != text.data() + text.size())
      fail(key_of(name), "expected a whole number, got '" + text + "'");
    if (parsed < min || parsed > max)
      fail(key_of(name), "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                             ", got " + text);
    return parsed;
  }

  std::chrono::seconds seconds(const std::string& name, std::chrono::seconds fallback,
                               std::uint64_t min = 0, std::uint64_t max = 7 * 24 * 3600) const {
    return std::chrono::seconds(number(name, fallback.count(), min, max));
  }

  template <typename Enum>
  Enum choice(const std::string& name, Enum fallback,
              std::initializer_list<std::pair<const char*, Enum>> options) const {
    if (!has(name)) return fallback;
    auto value = string(name);
    std::string list;
    for (const auto& [text, e] : options) {
      if (value == text) return e;
      list += (list.empty() ? "" : " | ") + std::string(text);
    }
    fail(key_of(name), "expected " + list + ", got '" + value + "'");
  }

  std::vector<std::string> strings(const std::string& name, std::vector<std::string> fallback = {}) const {
    if (!has(name)) return fallback;
    auto value = node_[name];
    if (value.IsScalar()) return {value.as<std::string>()};
    if (!value.IsSequence()) fail(key_of(name), "expected a list of strings");
    std::vector<std::string> out;
    for (const auto& item : value) {
      if (!item.IsScalar()) fail(key_of(name), "expected a list of strings");
      out.push_back(item.as<std::string>());
    }
    return out;
  }

  // A path relative to the config file's folder; must exist when `must_exist`.
  std::filesystem::path path(const std::string& name, bool must_exist = true) const {
    if (!has(name)) return {};
    return resolve(name, string(name), must_exist);
  }

  std::filesystem::path required_path(const std::string& name) const {
    if (!has(name)) fail(key_of(name), "is required");
    return path(name);
  }

  std::vector<std::filesystem::path> paths(const std::string& name) const {
    std::vector<std::filesystem::path> out;
    for (const auto& text : strings(name)) out.push_back(resolve(name, text, true));
    return out;
  }

  std::filesystem::path resolve(const std::string& name, const std::string& text, bool must_exist) const {
    if (text.empty()) fail(key_of(name), "path is empty");
    std::filesystem::path p(text);
    if (p.is_relative()) p = file_.parent_path() / p;
    p = p.lexically_normal();
    if (must_exist) {
      std::ifstream probe(p);
      if (!probe) fail(key_of(name), "cannot read '" + p.string() + "'");
    }
    return p;
  }

  const std::filesystem::path& file() const { return file_; }
  const YAML::Node& node() const { return node_; }
  const std::string& path_name() const { return path_; }

private:
  std::filesystem::path file_;
  YAML::Node node_;
  std::string path_;
};

// The upstream section (upstream.url or upstream.servers, identity headers, Kerberos): config/upstream_loader.cc.
UpstreamConfig parse_upstream(const Section& upstream);

}  // namespace easedge::config
