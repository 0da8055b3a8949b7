import SystemPackage
import Yams

extension Recipe {
  /// The names of the built-in recipes (`Pipelines/*.yaml`, embedded in the binary), sorted.
  public static var builtinNames: [String] { builtinSources.keys.sorted() }

  /// Loads a recipe by built-in name or from a file.
  ///
  /// `nameOrPath` is a path when it contains `/` or ends in `.yaml` or `.yml`, and is then read
  /// from disk; otherwise it names a built-in recipe (``builtinNames``), which needs no files.
  ///
  /// - Throws: `notFound` for a missing file or an unknown name (listing the built-in ones),
  ///   `io` for a file that cannot be read or is not UTF-8, and what ``init(yaml:file:)`` throws.
  public static func load(_ nameOrPath: String) throws(RecipeError) -> Recipe {
    let isPath = nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml")
    guard isPath else {
      guard let text = builtinSources[nameOrPath] else {
        throw RecipeError(
          .notFound,
          "no built-in recipe named '\(nameOrPath)'; the built-in recipes are \(builtinNames.joined(separator: ", ")) "
            + "(a recipe file is given by a path containing '/' or ending in .yaml)")
      }
      return try Recipe(yaml: text, file: "Pipelines/\(nameOrPath).yaml")
    }
    guard let text = String(validating: try readFile(nameOrPath), as: UTF8.self) else {
      throw RecipeError(.io, "the recipe is not UTF-8 text", file: nameOrPath)
    }
    return try Recipe(yaml: text, file: nameOrPath)
  }

  /// The largest recipe file read: recipes are a few kilobytes, and the cap keeps a wrong path
  /// (a device, a model file) from being read whole.
  private static let maximumFileSize = 1 << 20

  /// The bytes of the file at `path`.
  ///
  /// - Throws: `notFound` if there is no such file, `io` with the system's reason otherwise, or
  ///   for a file over 1 MiB.
  private static func readFile(_ path: String) throws(RecipeError) -> [UInt8] {
    let bytes: [UInt8]
    do {
      let descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
      bytes = try descriptor.closeAfter {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= maximumFileSize {
          let count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0, retryOnInterrupt: true) }
          if count == 0 { break }
          bytes += chunk[..<count]
        }
        return bytes
      }
    } catch Errno.noSuchFileOrDirectory {
      throw RecipeError(.notFound, "no such recipe file", file: path)
    } catch {
      throw RecipeError(.io, "cannot read the recipe: \(error)", file: path)
    }
    guard bytes.count <= maximumFileSize else {
      throw RecipeError(.io, "the file is larger than 1 MiB; it is not a recipe", file: path)
    }
    return bytes
  }

  /// Parses a recipe from YAML text (the schema is in the type's documentation).
  ///
  /// - Parameters:
  ///   - yaml: the recipe document.
  ///   - file: where the text comes from, for errors; its file name without extension is the
  ///     recipe's name when the document has no `name`.
  /// - Throws: `syntax` for text that is not one YAML document or that holds an anchor or an
  ///   alias (``YAMLAnchorScan``); `unknownKey`, `missingKey`,
  ///   `wrongType` or `invalidValue` for a document that breaks the schema, naming the key path.
  public init(yaml: String, file: String) throws(RecipeError) {
    if let found = YAMLAnchorScan.first(in: yaml) {
      throw RecipeError(
        .syntax,
        "\(found.token): a recipe takes no YAML anchors or aliases (&name, *name); write the value out "
          + "(a glob that starts with * is quoted: match: '*.mlp.*')", file: file, line: found.line)
    }
    let root: Node?
    do {
      root = try Yams.compose(yaml: yaml)
    } catch {
      throw RecipeError(.syntax, "not valid YAML: \(error)", file: file)
    }
    guard let root else { throw RecipeError(.missingKey, "the recipe is empty", file: file) }
    let document = RecipeNode(node: root, path: "", file: file)
    let members = try document.mapping(
      allowed: ["name", "dequantize", "quantize", "rules", "shard", "memory"], what: "a recipe")
    var name = file.split(separator: "/").last.map(String.init) ?? file
    for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) && name.count > suffix.count {
      name.removeLast(suffix.count)
    }
    if let nameNode = members["name"] {
      name = try nameNode.string()
      guard !name.isEmpty else { throw nameNode.error(.invalidValue, "the name is empty") }
    }
    self.init(name: name, defaultConfig: try members["quantize"].map(RecipeScheme.config))
    rules = try members["rules"]?.sequence(expected: "a list of rules").map(Self.rule) ?? []
    dequantizes = try members["dequantize"]?.boolean() ?? false
    if let shard = try members["shard"]?.mapping(allowed: ["max-size", "layout"], what: "shard") {
      maxShardSize = try shard["max-size"]?.byteCount()
      layout = try shard["layout"]?.choice(["input": ConversionOptions.Layout.input, "canonical": .canonical])
    }
    if let memory = try members["memory"]?.mapping(allowed: ["budget", "spill-compression"], what: "memory") {
      memoryBudget = try memory["budget"]?.byteCount()
      spillCompression = try memory["spill-compression"]?.choice(["lz4": SpillCompression.lz4, "none": .none])
    }
  }

  /// One entry of `rules`: `match` and exactly one of `skip: true` or `quantize: {...}`.
  private static func rule(_ node: RecipeNode) throws(RecipeError) -> Rule {
    let members = try node.mapping(allowed: ["match", "skip", "quantize"], what: "a rule")
    guard let match = members["match"] else {
      throw node.error(.missingKey, "a rule needs match: a glob such as '*.mlp.*' or a regex 're:...'")
    }
    let pattern: TensorPattern
    do {
      pattern = try TensorPattern(try match.string())
    } catch {
      throw match.error(error.code, error.message)
    }
    switch (members["skip"], members["quantize"]) {
    case (let skip?, nil):
      guard try skip.boolean() else {
        throw skip.error(.invalidValue, "skip must be true; to quantize the matched tensors, write quantize: instead")
      }
      return Rule(pattern, .skip)
    case (nil, let quantize?):
      return Rule(pattern, .quantize(try RecipeScheme.config(quantize)))
    default:
      throw node.error(.missingKey, "a rule needs exactly one of skip: true or quantize: {scheme: ...}")
    }
  }
}
