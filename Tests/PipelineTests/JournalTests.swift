import Foundation
import Testing

@testable import Pipeline

@Suite struct JournalTests {
  static let digest = String(repeating: "0123456789abcdef", count: 4)

  @Test(arguments: [
    ("", [String: Journal.Entry](), 0),
    ("commit a 10\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ncommit a 20\n", ["a": .committed(length: 20)], 24),
    ("commit a 10\ndone a 30 \(digest)\n", ["a": .done(size: 30, sha256: digest)], 12 + 75),
    ("commit a 10\ncommit b 5\n", ["a": .committed(length: 10), "b": .committed(length: 5)], 23),
    // A torn last line (a crash during the append) is ignored.
    ("commit a 10\ncommit a 2", ["a": .committed(length: 10)], 12),
    ("commit a 10\ndone a 30 0123", ["a": .committed(length: 10)], 12),
    // Garbage, and everything after it, is ignored.
    ("commit a 10\n\u{0}\u{7F}garbage\ncommit a 20\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ncommit a -5\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ncommit a 99999999999999999999999999\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ndone a 18446744073709551616 \(digest)\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ndone a -1 \(digest)\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ndone a 30 \(digest.uppercased().prefix(63))z\n", ["a": .committed(length: 10)], 12),
    ("commit a 10\ncommit a 1e3\n", ["a": .committed(length: 10)], 12),
    ("commit a 10 11\n", [:], 0),
    ("\n", [:], 0),
  ])
  func aJournalIsReadUpToItsFirstBadLine(text: String, entries: [String: Journal.Entry], valid: Int) {
    let parsed = Journal.parse(Array(text.utf8))
    #expect(parsed.entries == entries)
    #expect(parsed.validLength == valid)
  }

  /// C10: reading another worker's journal never changes it, even with a torn end.
  @Test func readingNeverWrites() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/journal-1.log"
      try "commit a 10\ncommit a 2".write(toFile: path, atomically: true, encoding: .utf8)
      #expect(Journal.read(path) == ["a": .committed(length: 10)])
      #expect(try String(contentsOfFile: path, encoding: .utf8) == "commit a 10\ncommit a 2")
      #expect(Journal.read(directory + "/missing.log") == [:])
    }
  }

  /// Opening one's own journal for appending cuts its torn end, so the next line is whole.
  @Test func openingForAppendCutsTheTornEnd() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/journal-0.log"
      try "commit a 10\ncommit a 2".write(toFile: path, atomically: true, encoding: .utf8)
      let journal = try Journal(path: path)
      try journal.commit("a", length: 20)
      try journal.done("a", size: 30, sha256: Self.digest)
      #expect(
        try String(contentsOfFile: path, encoding: .utf8) == "commit a 10\ncommit a 20\ndone a 30 \(Self.digest)\n")
      #expect(Journal.read(path) == ["a": .done(size: 30, sha256: Self.digest)])
    }
  }

  @Test func everyWorkersJournalIsMerged() throws {
    try withTemporaryDirectory { directory in
      let output = OutputDirectory(path: directory)
      try FileManager.default.createDirectory(atPath: output.stateFolder, withIntermediateDirectories: true)
      try "done a 30 \(Self.digest)\n".write(toFile: output.journalPath(worker: 0), atomically: true, encoding: .utf8)
      try "commit b 5\ncommit b 9".write(toFile: output.journalPath(worker: 1), atomically: true, encoding: .utf8)
      #expect(output.allJournals() == ["a": .done(size: 30, sha256: Self.digest), "b": .committed(length: 5)])
      #expect(try String(contentsOfFile: output.journalPath(worker: 1), encoding: .utf8) == "commit b 5\ncommit b 9")
    }
  }
}
