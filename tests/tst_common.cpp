// Unit tests of core/common: half and bfloat16 casts (checked against values worked out by
// hand from the IEEE formats), UTF-8 validation, text-file error messages, and the rules of
// reading inputs (input_file), writing outputs (output_file), parsing JSON (json), reading its
// fields (json_fields) and cancelling (cancel).
#include <QTest>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "common/cancel.h"
#include "common/error.h"
#include "common/half.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/json_fields.h"
#include "common/output_file.h"
#include "common/sha256.h"
#include "common/text_file.h"

using namespace gptqw;

class TestCommon : public QObject {
  Q_OBJECT
 private slots:
  void halfKnownValues() {
    QCOMPARE(float_to_half(1.0f), uint16_t(0x3c00));
    QCOMPARE(float_to_half(-2.0f), uint16_t(0xc000));
    QCOMPARE(float_to_half(65504.0f), uint16_t(0x7bff));    // largest half
    QCOMPARE(float_to_half(65520.0f), uint16_t(0x7c00));    // rounds up to Inf
    QCOMPARE(float_to_half(5.9604645e-8f), uint16_t(0x0001));  // smallest subnormal
    QCOMPARE(float_to_half(2.98e-8f), uint16_t(0x0000));    // below half of it
    QCOMPARE(float_to_half(0.1f), uint16_t(0x2e66));
    // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    QCOMPARE(float_to_half(1.0f + std::ldexp(1.0f, -11)), uint16_t(0x3c00));
    QCOMPARE(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), uint16_t(0x3c02));
    QVERIFY(std::isnan(half_to_float(float_to_half(std::numeric_limits<float>::quiet_NaN()))));
    QCOMPARE(half_to_float(0x3555), 0.333251953125f);
    QCOMPARE(half_to_float(0x0001), std::ldexp(1.0f, -24));
    QCOMPARE(half_to_float(0xfbff), -65504.0f);
  }
  void halfRoundTripAllValues() {
    for (uint32_t h = 0; h < 0x10000; ++h) {
      float f = half_to_float(static_cast<uint16_t>(h));
      if (std::isnan(f)) continue;
      QCOMPARE(float_to_half(f), static_cast<uint16_t>(h));
    }
  }
  // FIPS 180-4's examples, a block-boundary length, and a million 'a's fed in odd pieces.
  void sha256KnownDigests() {
    QCOMPARE(sha256_hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    QCOMPARE(sha256_hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    QCOMPARE(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    Sha256 h;
    const std::string chunk(997, 'a');
    size_t left = 1000000;
    while (left > 0) {
      const size_t n = std::min(left, chunk.size());
      h.update(chunk.data(), n);
      left -= n;
    }
    QCOMPARE(h.hex(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
  }
  void bf16() {
    QCOMPARE(float_to_bf16(1.0f), uint16_t(0x3f80));
    QCOMPARE(bf16_to_float(0x4049), 3.140625f);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
    QCOMPARE(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), uint16_t(0x3f80));
    QCOMPARE(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), uint16_t(0x3f82));
  }
  void utf8Validation() {
    QCOMPARE(find_invalid_utf8("plain ascii"), std::string::npos);
    QCOMPARE(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);
    QCOMPARE(find_invalid_utf8("ab\xff"), size_t(2));
    QCOMPARE(find_invalid_utf8("\xc0\xaf"), size_t(0));          // overlong '/'
    QCOMPARE(find_invalid_utf8("x\xed\xa0\x80"), size_t(1));     // surrogate
    QCOMPARE(find_invalid_utf8("xy\xe2\x82"), size_t(2));        // truncated
  }
  void textFileErrors() {
    QTemporaryDir dir;
    auto p = std::filesystem::path(dir.path().toStdString());
    auto expect_error = [](const std::filesystem::path& f, const char* what) {
      try {
        read_text_file(f);
        QFAIL("no error");
      } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find(f.string()) != std::string::npos, e.what());
        QVERIFY2(std::string(e.what()).find(what) != std::string::npos, e.what());
      }
    };
    expect_error(p / "missing.txt", "no such file");
    expect_error(p, "is a directory");
    std::ofstream(p / "empty.txt").close();
    expect_error(p / "empty.txt", "empty");
    std::ofstream(p / "latin1.txt") << "caf\xe9";
    expect_error(p / "latin1.txt", "offset 3");
  }
  void textFilePrefixCutsOnCharacterBoundary() {
    QTemporaryDir dir;
    auto f = std::filesystem::path(dir.path().toStdString()) / "t.txt";
    std::ofstream(f) << "a\xc3\xa9z";  // a é z
    QCOMPARE(read_text_file(f, 2), std::string("a"));
    QCOMPARE(read_text_file(f, 3), std::string("a\xc3\xa9"));
  }

  void outputFileRules() {
    QTemporaryDir dir;
    const std::filesystem::path p(dir.path().toStdString());
    auto slurp = [](const std::filesystem::path& f) {
      std::ifstream in(f, std::ios::binary);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    auto error_of = [](auto&& f) -> std::string {
      try {
        f();
      } catch (const Error& e) {
        return e.what();
      }
      return "";
    };
    // New, then replaced; no temporary left beside it.
    write_file_atomically(p / "out.txt", "one");
    write_file_atomically(p / "out.txt", "two");
    QCOMPARE(slurp(p / "out.txt"), std::string("two"));
    for (const auto& e : std::filesystem::directory_iterator(p))
      QVERIFY2(e.path().filename().string().find("gptqw-tmp") == std::string::npos, e.path().c_str());
    // A link, a folder, a device and a missing folder are refused, naming the destination;
    // the link's target and the device stay as they were.
    std::ofstream(p / "target.txt") << "precious";
    std::filesystem::create_symlink(p / "target.txt", p / "link.txt");
    std::string msg = error_of([&] { write_file_atomically(p / "link.txt", "x"); });
    QVERIFY2(msg.find("link.txt: is a symbolic link") != std::string::npos, msg.c_str());
    QCOMPARE(slurp(p / "target.txt"), std::string("precious"));
    msg = error_of([&] { write_file_atomically(p, "x"); });
    QVERIFY2(msg.find("is a directory") != std::string::npos, msg.c_str());
    msg = error_of([&] { write_file_atomically("/dev/null", "x"); });
    QVERIFY2(msg.find("/dev/null: is a character device") != std::string::npos, msg.c_str());
    QVERIFY(std::filesystem::is_character_file("/dev/null"));
    msg = error_of([&] { write_file_atomically(p / "no" / "f.txt", "x"); });
    QVERIFY2(msg.find("f.txt: cannot be written: its parent folder") != std::string::npos, msg.c_str());
    // Inputs (registered, or named by the caller) are never written into or over.
    std::filesystem::create_directory(p / "model");
    protect_input(p / "model", "the test model folder");
    msg = error_of([&] { write_file_atomically(p / "model" / "r.json", "x"); });
    QVERIFY2(msg.find("is inside the test model folder") != std::string::npos, msg.c_str());
    msg = error_of([&] { check_output_file(p / "target.txt", {{p / "target.txt", "the text"}}); });
    QVERIFY2(msg.find("is the text") != std::string::npos, msg.c_str());
    // A folder: refused without force; with force only when empty or recognised by its owner.
    std::filesystem::create_directory(p / "folder");
    std::ofstream(p / "folder" / "doc.txt") << "mine";
    auto nobody = [](const std::filesystem::path&) { return std::string("not ours"); };
    msg = error_of([&] { check_output_folder(p / "folder", false, nobody); });
    QVERIFY2(msg.find("already exists") != std::string::npos, msg.c_str());
    msg = error_of([&] { check_output_folder(p / "folder", true, nobody); });
    QVERIFY2(msg.find("is not replaced: not ours") != std::string::npos, msg.c_str());
    msg = error_of([&] { check_output_folder(p / "model", true, nobody); });
    QVERIFY2(msg.find("is the test model folder") != std::string::npos, msg.c_str());
    std::filesystem::create_directory(p / "empty");
    {
      OutputFolder out(p / "empty", true, nobody);
      write_file_atomically(out.temp() / "a.txt", "new");
      out.commit();
    }
    QCOMPARE(slurp(p / "empty" / "a.txt"), std::string("new"));
    // Not committed: the temporary folder goes, the destination stays as it was.
    {
      OutputFolder out(p / "never", false, nobody);
      write_file_atomically(out.temp() / "a.txt", "x");
    }
    QVERIFY(!std::filesystem::exists(p / "never"));
    for (const auto& e : std::filesystem::directory_iterator(p))
      QVERIFY2(e.path().filename().string().find("gptqw-tmp") == std::string::npos, e.path().c_str());
  }

  void inputFileRules() {
    QTemporaryDir dir;
    const std::filesystem::path p(dir.path().toStdString());
    auto error_of = [](auto&& f) -> std::string {
      try {
        f();
      } catch (const Error& e) {
        return e.what();
      }
      return "";
    };
    QCOMPARE(::mkfifo((p / "fifo").c_str(), 0600), 0);
    std::string msg = error_of([&] { read_input_file(p / "fifo", kConfigInput); });  // no hang
    QVERIFY2(msg.find("fifo: is a FIFO, not a regular file") != std::string::npos, msg.c_str());
    msg = error_of([&] { read_input_file("/dev/zero", kConfigInput); });
    QVERIFY2(msg.find("/dev/zero: is a character device") != std::string::npos, msg.c_str());
    msg = error_of([&] { read_input_file(p, kConfigInput); });
    QVERIFY2(msg.find("is a directory, expected a JSON configuration file") != std::string::npos, msg.c_str());
    std::ofstream(p / "big.json").close();
    std::filesystem::resize_file(p / "big.json", (16 << 20) + 1);  // sparse: nothing to read
    msg = error_of([&] { read_input_file(p / "big.json", kConfigInput); });
    QVERIFY2(msg.find("big.json: is 16.0 MiB; configuration files over 16 MiB are refused") != std::string::npos, msg.c_str());
    std::ofstream(p / "small.json") << "{\"a\": 1}";
    QCOMPARE(read_input_file(p / "small.json", kConfigInput), std::string("{\"a\": 1}"));
    // Paths of a model folder stay inside it once links are resolved.
    std::filesystem::create_directory(p / "m");
    std::ofstream(p / "m" / "x.json") << "{}";
    std::filesystem::create_symlink(p / "small.json", p / "m" / "out.json");
    std::filesystem::create_symlink(p / "m" / "x.json", p / "m" / "in.json");
    QVERIFY(resolve_inside(p / "m", "in.json") == std::filesystem::weakly_canonical(p / "m" / "x.json"));
    msg = error_of([&] { resolve_inside(p / "m", "out.json"); });
    QVERIFY2(msg.find("out.json: leads to") != std::string::npos && msg.find("outside the model folder") != std::string::npos, msg.c_str());
    msg = error_of([&] { resolve_inside(p / "m", "../small.json"); });
    QVERIFY2(msg.find("outside the model folder") != std::string::npos, msg.c_str());
  }

  void jsonRules() {
    auto error_of = [](std::string_view text, const JsonRules& rules) -> std::string {
      try {
        parse_json(text, "f.json", rules);
      } catch (const FormatError& e) {
        return e.what();
      }
      return "";
    };
    QCOMPARE(error_of(R"({"a": {"b": [1, 2.5, "x", null, true]}})", {}), std::string());
    // Depth: 65 levels parse (the top level is depth 0), 66 do not.
    QCOMPARE(error_of(std::string(65, '[') + std::string(65, ']'), {}), std::string());
    QCOMPARE(error_of(std::string(66, '[') + std::string(66, ']'), {}),
             std::string("f.json: JSON nested more than 64 levels deep"));
    QCOMPARE(error_of(std::string(66, '[') + std::string(66, ']'), {"header", false}),
             std::string("f.json: header is nested more than 64 levels deep"));
    // Duplicate keys, only where asked (escapes are decoded before comparing).
    QCOMPARE(error_of(R"({"a": 1, "\u0061": 2})", {}), std::string());
    QCOMPARE(error_of(R"({"x": {"a": 1, "\u0061": 2}})", {"index", true}),
             std::string("f.json: index has the key 'a' twice"));
    QCOMPARE(error_of(R"({"a": {"k": 1}, "b": {"k": 2}})", {"index", true}), std::string());
    QVERIFY(error_of("[1e400]", {}).find("not valid JSON") != std::string::npos);
    QVERIFY(error_of("{\"a\": }", {"header", true}).find("header is not valid JSON") != std::string::npos);
    QCOMPARE(parse_json(R"({"a": 1, "a": 2})", "f.json")["a"].get<int>(), 2);  // the last, as nlohmann
  }

  // Every problem is one line naming the file, the field (with its object's prefix, and the
  // entry of a list) and what is wrong; integers are checked against their type and range.
  void jsonFields() {
    const nlohmann::json j = parse_json(R"({"n": 7, "big": 18446744073709551615, "neg": -3,
        "x": 2.5, "f": 4.0, "huge": 1e300, "s": "text", "b": true, "nothing": null,
        "list": [1, 2, "three"], "reals": [1.5, 1e300], "inner": {"k": "v"},
        "objs": [{"k": 1}, 2], "long": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,
        22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39]})", "f.json");
    const JsonFields f(j, "f.json", "q.");
    auto error_of = [&](auto read) -> std::string {
      try {
        read();
      } catch (const FormatError& e) {
        return e.what();
      }
      return "";
    };
    QCOMPARE(f.integer<int>("n"), 7);
    QCOMPARE(f.integer<uint64_t>("big"), std::numeric_limits<uint64_t>::max());
    QCOMPARE(f.integer<int64_t>("neg"), int64_t(-3));
    QCOMPARE(f.real("x"), 2.5);
    QCOMPARE(f.string("s"), std::string("text"));
    QVERIFY(f.boolean("b"));
    QCOMPARE(f.integers<int>("long").size(), size_t(40));
    QCOMPARE(f.object("inner").string("k"), std::string("v"));
    // Optional: absent and null give the fallback.
    QCOMPARE(f.integer_or<int>("absent", 5), 5);
    QCOMPARE(f.integer_or<int>("nothing", 5), 5);
    QCOMPARE(f.string_or("nothing", "d"), std::string("d"));
    QVERIFY(!f.has("nothing") && f.has("n"));
    QCOMPARE(error_of([&] { f.integer<int>("absent"); }),
             std::string("f.json: field 'q.absent' is missing"));
    QCOMPARE(error_of([&] { f.integer<int>("f"); }),
             std::string("f.json: field 'q.f' must be an integer, got 4.0"));
    QCOMPARE(error_of([&] { f.integer<int>("nothing"); }),
             std::string("f.json: field 'q.nothing' must be an integer, got null"));
    QCOMPARE(error_of([&] { f.integer<int64_t>("big"); }),
             std::string("f.json: field 'q.big' must be an integer from -9223372036854775808 to "
                         "9223372036854775807, got 18446744073709551615"));
    QCOMPARE(error_of([&] { f.integer<uint32_t>("neg"); }),
             std::string("f.json: field 'q.neg' must be an integer from 0 to 4294967295, got -3"));
    QCOMPARE(error_of([&] { f.integer<int>("n", 1, 4); }),
             std::string("f.json: field 'q.n' must be an integer from 1 to 4, got 7"));
    QCOMPARE(error_of([&] { f.real<float>("huge"); }),
             std::string("f.json: field 'q.huge' must be a finite number within ±3.40282e+38, got 1e+300"));
    QCOMPARE(f.real("huge"), 1e300);
    QCOMPARE(error_of([&] { f.reals<float>("reals"); }),
             std::string("f.json: field 'q.reals' entry 1 must be a finite number within "
                         "±3.40282e+38, got 1e+300"));
    QCOMPARE(error_of([&] { f.integers<int>("list"); }),
             std::string("f.json: field 'q.list' entry 2 must be an integer, got \"three\""));
    QCOMPARE(error_of([&] { f.boolean("s"); }),
             std::string("f.json: field 'q.s' must be true or false, got \"text\""));
    QCOMPARE(error_of([&] { f.string("n"); }),
             std::string("f.json: field 'q.n' must be a string, got 7"));
    QCOMPARE(error_of([&] { f.objects("objs"); }),
             std::string("f.json: field 'q.objs' entry 1 must be an object, got 2"));
    // A large value is described, never copied into the message.
    QCOMPARE(error_of([&] { f.string("long"); }),
             std::string("f.json: field 'q.long' must be a string, got an array of 40 entries"));
    // Nested readers name their prefix; ConfigError where asked.
    QCOMPARE(error_of([&] { f.object("inner", "q.inner.").integer<int>("k"); }),
             std::string("f.json: field 'q.inner.k' must be an integer, got \"v\""));
    const JsonFields config(j, "config.json", "", JsonFields::Throws::config);
    QVERIFY_THROWS_EXCEPTION(ConfigError, config.string("n"));
  }

  void cancellation() {
    check_cancelled();  // nothing requested
    request_cancel();
    QVERIFY(cancel_requested());
    QVERIFY_THROWS_EXCEPTION(Cancelled, check_cancelled());
    reset_cancel();
    std::atomic<bool> job{false};
    {
      CancelScope scope(&job);
      CancelPoll poll(4);
      for (int i = 0; i < 8; ++i) poll.tick();
      job = true;
      auto eight_ticks = [&] {
        for (int i = 0; i < 8; ++i) poll.tick();
      };
      QVERIFY_THROWS_EXCEPTION(Cancelled, eight_ticks());
    }
    check_cancelled();  // the job's flag left with its scope
  }
};

QTEST_GUILESS_MAIN(TestCommon)
#include "tst_common.moc"
