import SafeTensors
import Testing

@Suite struct JSONTests {
  @Test func stringsDecodeEveryEscapeAndSurrogatePairs() throws {
    let value = try JSONParser.parse(#"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u65E5", "\ud83e\udd16", "日本"]"#)
    #expect(value == .array([.string("a\"b\\c/d\u{8}\u{c}\n\r\t"), .string("é日"), .string("🤖"), .string("日本")]))
  }

  @Test func numbersKeepTheirTextAndOnlyPlainIntegersReadAsUInt64() throws {
    let value = try JSONParser.parse("[0, 18446744073709551615, 18446744073709551616, -1, 1.5, 1e3, -0]")
    #expect(value.array?.map(\.uint64) == [0, .max, nil, nil, nil, nil, nil])
    #expect(value.array?[4] == .number("1.5"))
  }

  @Test(arguments: [
    "01", "1.", ".5", "+1", "1e", "--1", "0x10", "NaN", "Infinity", "tru", "nul", "[1,]", "{\"a\"}", "{1:2}",
    "\"\\u12\"",
  ])
  func invalidJSONIsRefusedAsSyntax(_ text: String) {
    let failure = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    #expect(failure?.kind == .syntax)
  }

  @Test func invalidUTF8IsFoundAtItsOffsetInsideLongASCIIRuns() {
    // The check skips ASCII 32 bytes at a time: a bad byte (a lone continuation byte, a
    // truncated sequence, an overlong lead) at any offset of a 100-byte string is still found
    // there, and valid multi-byte characters around the runs pass.
    let prefix = Array(#"[""#.utf8)
    for bad: [UInt8] in [[0x80], [0xE6, 0x97], [0xC0, 0xAF]] {
      for offset in 0..<100 {
        var string = [UInt8](repeating: UInt8(ascii: "a"), count: 100)
        string.replaceSubrange(offset..<offset + 1, with: bad)
        let failure = #expect(throws: JSONParser.Failure.self) {
          try JSONParser.parse(prefix + string + Array(#""]"#.utf8))
        }
        #expect(failure?.kind == .encoding)
        #expect(failure?.offset == prefix.count + offset)
      }
    }
    let valid = String(repeating: "a", count: 40) + "日本" + String(repeating: "b", count: 70) + "🤖"
    #expect((try? JSONParser.parse("[\"\(valid)\"]")) == .array([.string(valid)]))
  }

  @Test func nestingIsBoundedAtTheLimit() throws {
    let limit = JSONParser.maximumDepth
    _ = try JSONParser.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
    let failure = #expect(throws: JSONParser.Failure.self) {
      try JSONParser.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1))
    }
    #expect(failure?.kind == .depth)
  }

  @Test func duplicateKeysAreRefusedWithTheirOffset() {
    let failure = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(#"{"a": 1, "b": {"a": 1, "a": 2}}"#) }
    #expect(failure?.kind == .duplicateKey)
    #expect(failure?.offset == 23)
  }

  @Test func equalityIgnoresMemberOrderLikeParsedDictionaries() throws {
    #expect(try JSONParser.parse(#"{"a": 1, "b": [true, null]}"#) == JSONParser.parse(#"{"b":[true,null],"a":1}"#))
    #expect(try JSONParser.parse(#"{"a": 1}"#) != JSONParser.parse(#"{"a": 2}"#))
    #expect(try JSONParser.parse("1") == JSONParser.parse("1.0"))
  }

  @Test func integersCompareExactlyAtAnySizeAndOtherNumbersByValue() throws {
    // 2^53 + 1 and 2^53 are the same Double.
    #expect(try JSONParser.parse("9007199254740993") != JSONParser.parse("9007199254740992"))
    #expect(try JSONParser.parse("[18446744073709551617]") != JSONParser.parse("[18446744073709551616]"))
    #expect(try JSONParser.parse("-9007199254740993") != JSONParser.parse("-9007199254740992"))
    #expect(
      try JSONParser.parse("123456789012345678901234567890") == JSONParser.parse("123456789012345678901234567890"))
    #expect(try JSONParser.parse("-0") == JSONParser.parse("0"))
    #expect(try JSONParser.parse("5") != JSONParser.parse("-5"))
    #expect(try JSONParser.parse("1e2") == JSONParser.parse("100"))
    #expect(try JSONParser.parse("0.5") == JSONParser.parse("5e-1"))
    #expect(try JSONParser.parse("0.1") != JSONParser.parse("0.2"))
  }

  @Test func theBytesOfMemoryBoundToAnotherTypeParseAndStayThatType() throws {
    // "[1, 2]" and two spaces, in memory bound to UInt16; the parser reads it as bytes only
    // while it parses.
    var words = [UInt16](repeating: 0, count: 4)
    words.withUnsafeMutableBytes { $0.copyBytes(from: Array("[1, 2]  ".utf8)) }
    let before = words
    #expect(try words.withUnsafeBytes { try JSONParser.parse($0) } == .array([.number("1"), .number("2")]))
    #expect(words.withUnsafeBufferPointer { Array($0) } == before)
  }

  @Test func theCompactStyleWritesWhatSerdeJSONWrites() {
    let value = JSONValue.object([
      JSONMember("k", .string("é\"\\\n\u{1}\u{7F}🤖")), JSONMember("n", .array([.number("1"), .null, .bool(false)])),
    ])
    #expect(JSONWriter.string(value) == #"{"k":"é\"\\\n\u0001\#u{7F}🤖","n":[1,null,false]}"#)
  }

  @Test func thePythonStyleWritesWhatJSONDumpsWrites() {
    // json.dumps({"k": "é\"\\\n\x01\x7f🤖", "n": [1, None, False]})
    let value = JSONValue.object([
      JSONMember("k", .string("é\"\\\n\u{1}\u{7F}🤖")), JSONMember("n", .array([.number("1"), .null, .bool(false)])),
    ])
    #expect(
      JSONWriter.string(value, style: .python)
        == #"{"k": "\u00e9\"\\\n\u0001\u007f\ud83e\udd16", "n": [1, null, false]}"#)
  }

  @Test func theIndentedPythonStyleWritesWhatJSONDumpsWithIndentTwoWrites() throws {
    // json.dumps({"a": 1, "b": [1, [], {}], "c": {"x": "é"}, "d": []}, indent=2)
    let value = try JSONParser.parse(#"{"a": 1, "b": [1, [], {}], "c": {"x": "é"}, "d": []}"#)
    let expected =
      "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    [],\n    {}\n  ],\n  \"c\": {\n    \"x\": \"\\u00e9\"\n  },\n  \"d\": []\n}"
    #expect(JSONWriter.string(value, style: .pythonIndented) == expected)
  }
}
