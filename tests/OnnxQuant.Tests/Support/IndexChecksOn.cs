using System.Runtime.CompilerServices;

namespace OnnxQuant.Tests.Support;

/// <summary>Every pipeline the tests run — in-process CLI commands included — checks the graph's indexes after each pass.</summary>
internal static class IndexChecksOn
{
#pragma warning disable CA2255 // a test assembly is the place for this
    [ModuleInitializer]
    internal static void Enable() => Environment.SetEnvironmentVariable("ONNXQUANT_CHECK_INDEXES", "1");
#pragma warning restore CA2255
}
