import SafeTensors

/// What a run converts and how: recorded in the state folder so that a directory can be
/// recognised as a safeshard output in progress.
public struct RunIdentity: Sendable, Equatable {
  public var input: String
  public var recipe: String
  public var options: ConversionOptions

  public init(input: String, recipe: String, options: ConversionOptions) {
    self.input = input
    self.recipe = recipe
    self.options = options
  }

  /// The identity as the JSON object of `state.json`.
  public var json: JSONValue {
    .object([
      JSONMember("tool", .string("safeshard")), JSONMember("version", .string(BuildInfo.version)),
      JSONMember("input", .string(input)), JSONMember("recipe", .string(recipe)),
      JSONMember("max_shard_size", .number(String(options.maxShardSize))),
      JSONMember("layout", .string(options.layout.rawValue)),
    ])
  }
}
