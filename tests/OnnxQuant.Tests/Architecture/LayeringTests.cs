using System.Reflection;
using ArchUnitNET.Fluent;
using ArchUnitNET.Fluent.Slices;
using ArchUnitNET.Loader;
using ArchUnitNET.xUnit;
using OnnxQuant.Calibrate;
using OnnxQuant.Cli;
using OnnxQuant.IR;
using static ArchUnitNET.Fluent.ArchRuleDefinition;

namespace OnnxQuant.Tests.Architecture;

/// <summary>
/// The layering of src/ read from the compiled assemblies (every type reference counts: usings, fully qualified names,
/// signatures, method bodies): no namespace cycles, and OnnxQuant.Passes free of ONNX Runtime and the console.
/// </summary>
public class LayeringTests
{
    private static readonly Assembly Passes = typeof(Graph).Assembly;
    private static readonly Assembly Calibrate = typeof(Calibrator).Assembly;
    private static readonly Assembly Cli = typeof(CliApp).Assembly;

    private static readonly Lazy<ArchUnitNET.Domain.Architecture> Src =
        new(() => new ArchLoader().LoadAssemblies(Passes, Calibrate, Cli).Build());

    /// <summary>What OnnxQuant.Passes must never use: ONNX Runtime (OnnxQuant.Calibrate's job) and the console (OnnxQuant.Cli's).</summary>
    private const string BannedFromPasses = @"^(Microsoft\.ML\.OnnxRuntime|System\.CommandLine|Spectre\.Console)(\..+)?$";

    // Every namespace below root is its own slice, at full depth: OnnxQuant.Passes.W8A8 is not part of OnnxQuant.Passes.
    private static SliceRule FreeOfCycles(string root) =>
        SliceRuleDefinition.Slices().MatchingWithPackages(root + ".(**)").Should().BeFreeOfCycles();

    private static IArchRule PassesBan(Assembly assembly) =>
        Types().That().ResideInAssembly(assembly).Should()
            .NotDependOnAny(Types(true).That().ResideInNamespaceMatching(BannedFromPasses));

    [Fact]
    public void EveryNamespaceIsItsOwnSlice()
    {
        var slices = SliceRuleDefinition.Slices().MatchingWithPackages("OnnxQuant.(**)").GetObjects(Src.Value)
            .Select(s => s.Description).ToHashSet();
        Assert.Superset(new HashSet<string>
        {
            "OnnxQuant.IR", "OnnxQuant.IO", "OnnxQuant.Numerics", "OnnxQuant.Awq", "OnnxQuant.Smoothing", "OnnxQuant.Quantization",
            "OnnxQuant.Passes", "OnnxQuant.Passes.W8A8", "OnnxQuant.Calibrate", "OnnxQuant.Calibrate.Evaluation", "OnnxQuant.Cli",
        }, slices);
    }

    [Fact]
    public void SrcNamespacesHaveNoCycles() => FreeOfCycles("OnnxQuant").Check(Src.Value);

    [Fact]
    public void TheRootNamespaceUsesNoOtherOnnxQuantNamespace() =>
        // The slices leave the root out; everything uses OnnxQuantException, so any use the other way is a cycle.
        Types().That().ResideInNamespace("OnnxQuant").Should()
            .NotDependOnAny(Types().That().ResideInNamespaceMatching(@"^OnnxQuant\..+$")).Check(Src.Value);

    [Fact]
    public void PassesUsesNeitherOnnxRuntimeNorTheConsole() => PassesBan(Passes).Check(Src.Value);

    [Fact]
    public void TheCycleRuleCatchesACycleAndNamesItsNamespaces()
    {
        var architecture = new ArchLoader().LoadAssemblies(typeof(CycleSample.Left.Producer).Assembly).Build();
        var failures = FreeOfCycles("OnnxQuant.Tests.Architecture.CycleSample").Evaluate(architecture).Where(r => !r.Passed).ToList();
        var failure = Assert.Single(failures);
        Assert.Contains("OnnxQuant.Tests.Architecture.CycleSample.Left -> OnnxQuant.Tests.Architecture.CycleSample.Left.Inner", failure.Description);
        Assert.Contains("OnnxQuant.Tests.Architecture.CycleSample.Left.Inner -> OnnxQuant.Tests.Architecture.CycleSample.Left", failure.Description);
        Assert.DoesNotContain("CycleSample.Right", failure.Description);
    }

    [Fact]
    public void TheBanCatchesOnnxRuntimeAndTheConsoleWhereTheyAreUsed()
    {
        Assert.False(PassesBan(Calibrate).HasNoViolations(Src.Value));
        Assert.False(PassesBan(Cli).HasNoViolations(Src.Value));
        var cli = string.Join("\n", PassesBan(Cli).Evaluate(Src.Value).Where(r => !r.Passed).Select(r => r.Description));
        Assert.Contains("System.CommandLine", cli);
        Assert.Contains("Spectre.Console", cli);
    }
}
