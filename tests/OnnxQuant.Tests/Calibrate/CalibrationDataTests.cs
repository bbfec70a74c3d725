using OnnxQuant.Calibrate.Data;

namespace OnnxQuant.Tests.Calibrate;

public sealed class CalibrationDataTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-data-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    [Fact]
    public void Windows_are_contiguous_non_overlapping_and_fixed_by_the_seed()
    {
        var ids = Enumerable.Range(1000, 100).ToList();
        var options = new DataOptions { Samples = 4, SequenceLength = 10, Seed = 1 };
        var a = CalibrationData.Windows(ids, options, [], [], "t");
        Assert.Equal(4, a.Count);
        foreach (var w in a)
        {
            Assert.Equal(0, (w[0] - 1000) % 10); // starts on a window boundary
            Assert.Equal(Enumerable.Range(w[0], 10), w); // contiguous text
        }
        Assert.Equal(4, a.Select(w => w[0]).Distinct().Count());
        Assert.Equal(a, CalibrationData.Windows(ids, options, [], [], "t"));
        var seeds = Enumerable.Range(2, 5).Select(s => CalibrationData.Windows(ids, options with { Seed = s }, [], [], "t").Select(w => w[0]).ToArray());
        Assert.Contains(seeds, starts => !starts.SequenceEqual(a.Select(w => w[0])));
    }

    [Fact]
    public void Json_lines_may_be_input_ids_objects_whose_attention_mask_drops_padding()
    {
        File.WriteAllLines(Path.Combine(_folder, "batch.jsonl"),
        [
            "{\"input_ids\": [11, 12, 13, 0, 0], \"attention_mask\": [1, 1, 1, 0, 0]}",
            "{\"input_ids\": [14, 15, 16]}",
        ]);
        string path = Path.Combine(_folder, "batch.jsonl");

        var data = CalibrationData.Load(new DataOptions { Paths = [path], Samples = 2, SequenceLength = 3 }, "no-tokenizer-here.onnx");

        Assert.Equal(new[] { new[] { 11, 12, 13 }, new[] { 14, 15, 16 } }, data.Samples);
        File.WriteAllLines(path, ["{\"input_ids\": [1, 2], \"attention_mask\": [1]}"]);
        var e = Assert.Throws<OnnxQuantException>(() => CalibrationData.Load(new DataOptions { Paths = [path], Samples = 1, SequenceLength = 1 }, "m.onnx"));
        Assert.Contains("line 1: \"attention_mask\" must hold one 0 or 1 per input id (2 ids, 1 mask entries)", e.Message);
    }

    [Fact]
    public void Too_little_text_is_a_clear_error_with_the_numbers()
    {
        File.WriteAllText(Path.Combine(_folder, "short.ids"), string.Join(" ", Enumerable.Range(0, 50)));
        var e = Assert.Throws<OnnxQuantException>(() => CalibrationData.Load(
            new DataOptions { Paths = [Path.Combine(_folder, "short.ids")], Samples = 4, SequenceLength = 16 }, "m.onnx"));
        Assert.Contains("too little text", e.Message);
        Assert.Contains("50 tokens", e.Message);
        Assert.Contains("4 samples x 16 tokens need 64", e.Message);
        Assert.Contains("--samples", e.Message);
        Assert.Equal("short.ids", e.File);
    }

    [Fact]
    public void Json_lines_hold_text_or_token_ids()
    {
        File.WriteAllLines(Path.Combine(_folder, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]);
        File.WriteAllLines(Path.Combine(_folder, "text.jsonl"), ["{\"text\": \"the cat sat\"}", "\"the cat\"", "", "{\"text\": \"sat the\"}"]);
        var text = CalibrationData.Load(new DataOptions { Paths = [Path.Combine(_folder, "text.jsonl")], Samples = 1, SequenceLength = 9 }, Path.Combine(_folder, "m.onnx"));
        Assert.Equal(new[] { 2, 5, 6, 7, 5, 6, 7, 5, 3 }, text.Samples[0]);

        File.WriteAllLines(Path.Combine(_folder, "ids.jsonl"), ["[1, 2, 3]", "[4, 5, 6, 7]"]);
        var ids = CalibrationData.Load(new DataOptions { Paths = [Path.Combine(_folder, "ids.jsonl")], Samples = 2, SequenceLength = 3 }, "m.onnx");
        Assert.Equal(new[] { new[] { 1, 2, 3 }, new[] { 4, 5, 6 } }, ids.Samples);
        Assert.Equal("pre-tokenized ids", ids.TokenizerDescription);

        File.WriteAllLines(Path.Combine(_folder, "bad.jsonl"), ["{\"text\": 3}"]);
        var e = Assert.Throws<OnnxQuantException>(() => CalibrationData.Load(new DataOptions { Paths = [Path.Combine(_folder, "bad.jsonl")], Samples = 1, SequenceLength = 1 }, "m.onnx"));
        Assert.Contains("line 1", e.Message);
    }

    [Fact]
    public void The_default_data_is_emma()
    {
        string path = DefaultText.Find();
        Assert.Equal("emma.txt", Path.GetFileName(path));
        Assert.StartsWith("EMMA", File.ReadLines(path).First(l => l.Trim().Length > 0).Trim());
    }
}
