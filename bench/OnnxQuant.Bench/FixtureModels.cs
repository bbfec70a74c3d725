using OnnxQuant.Calibrate.Data;
using OnnxQuant.IO;

namespace OnnxQuant.Bench;

/// <summary>LLM-shaped fixture models (tests/OnnxQuant.Fixtures) with random token windows.</summary>
internal static class FixtureModels
{
    public static IEnumerable<(string Name, OnnxModel Model, CalibrationDataset Data)> Create(Args args)
    {
        yield break;
    }
}
