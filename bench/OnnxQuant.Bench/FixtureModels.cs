using OnnxQuant.Calibrate.Data;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;

namespace OnnxQuant.Bench;

/// <summary>LLM-shaped fixture models (tests/OnnxQuant.Fixtures) on seeded random token windows.</summary>
internal static class BenchFixtures
{
    public static IEnumerable<(string Name, OnnxModel Model, CalibrationDataset Data)> Create(Args args)
    {
        var torch = FixtureOptions.TinyLlama with { Layers = 4, Hidden = 256, Heads = 8, Intermediate = 704, MaxPositions = Math.Max(128, args.SequenceLength) };
        yield return ("TorchLlama fixture (4 layers, hidden 256)", FixtureModels.BuildModel(torch), RandomWindows(args, torch.Vocab));
        var genai = torch with { Family = FixtureFamily.GenAiLlama, KvCache = true };
        yield return ("GenAiLlama fixture with KV cache inputs (4 layers, hidden 256)", FixtureModels.BuildModel(genai), RandomWindows(args, genai.Vocab));
    }

    private static CalibrationDataset RandomWindows(Args args, int vocab)
    {
        var rng = new Random(11);
        var samples = Enumerable.Range(0, args.Samples).Select(_ => Enumerable.Range(0, args.SequenceLength).Select(_ => rng.Next(vocab)).ToArray()).ToList();
        return new CalibrationDataset(samples, args.SequenceLength, "random ids", "none");
    }
}
