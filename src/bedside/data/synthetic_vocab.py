"""Vocabulary and sentence templates of the synthetic corpus (written for bedside, not copied).

Each class has its own diseases, treatments, procedures, anatomy and measures; ``GENERIC`` holds
the clinical words every class shares, so that a document is not classified by one keyword.
Templates use slots: ``{d}`` disease, ``{t}`` treatment, ``{p}`` procedure, ``{a}`` anatomy,
``{m}`` measure, ``{g}`` population, ``{o}`` outcome, ``{n}``/``{n2}`` counts, ``{pct}`` a
percentage, ``{pv}`` a p value, ``{y}`` years, ``{des}`` a study design.
"""

from __future__ import annotations

SLOTS = ("d", "t", "p", "a", "m")

# fmt: off

VOCAB: dict[str, dict[str, list[str]]] = {
    "neoplasms": {
        "d": [
            "breast carcinoma", "non-small cell lung cancer", "hepatocellular carcinoma",
            "colorectal adenocarcinoma", "malignant melanoma", "diffuse large B-cell lymphoma",
            "acute myeloid leukemia", "multiple myeloma", "glioblastoma", "prostate cancer",
            "ovarian carcinoma", "squamous cell carcinoma", "osteosarcoma", "neuroblastoma",
            "renal cell carcinoma", "bladder tumor", "thyroid carcinoma", "soft tissue sarcoma",
            "metastatic disease", "chronic lymphocytic leukemia", "pancreatic adenocarcinoma",
            "cervical intraepithelial neoplasia", "Hodgkin disease", "mesothelioma",
        ],
        "t": [
            "cisplatin", "doxorubicin", "tamoxifen", "methotrexate", "5-fluorouracil",
            "cyclophosphamide", "paclitaxel", "vincristine", "interferon alfa", "etoposide",
            "adjuvant chemotherapy", "radiotherapy", "combination chemotherapy", "carboplatin",
            "interleukin-2", "bleomycin", "high-dose chemotherapy", "hormonal therapy",
        ],
        "p": [
            "mastectomy", "tumor resection", "lymph node dissection", "fine-needle aspiration",
            "flow cytometry", "immunohistochemical staining", "bone marrow transplantation",
            "tumor staging", "brachytherapy", "lumpectomy", "cytologic examination",
            "radical prostatectomy", "DNA ploidy analysis",
        ],
        "a": [
            "tumor cells", "lymph nodes", "bone marrow", "breast tissue", "primary tumor",
            "malignant cells", "tumor margins", "axillary nodes", "metastatic sites",
        ],
        "m": [
            "disease-free survival", "tumor response rate", "overall survival",
            "complete remission rate", "local recurrence", "tumor size", "estrogen receptor status",
            "time to progression", "histologic grade",
        ],
    },
    "digestive system diseases": {
        "d": [
            "Crohn disease", "ulcerative colitis", "peptic ulcer", "gastroesophageal reflux",
            "liver cirrhosis", "chronic hepatitis", "acute pancreatitis", "cholelithiasis",
            "duodenal ulcer", "celiac disease", "esophageal varices", "biliary atresia",
            "gastritis", "diverticulitis", "portal hypertension", "chronic pancreatitis",
            "primary biliary cirrhosis", "fatty liver", "achalasia", "bowel obstruction",
        ],
        "t": [
            "omeprazole", "ranitidine", "sulfasalazine", "mesalamine", "ursodeoxycholic acid",
            "cimetidine", "lactulose", "octreotide", "sucralfate", "antacids", "misoprostol",
            "enteral nutrition", "budesonide", "metoclopramide", "eradication therapy",
        ],
        "p": [
            "endoscopy", "colonoscopy", "laparoscopic cholecystectomy", "liver biopsy",
            "ERCP", "esophageal manometry", "gastrectomy", "sclerotherapy", "colectomy",
            "pH monitoring", "liver transplantation", "barium enema", "sphincterotomy",
        ],
        "a": [
            "gastric mucosa", "liver", "colon", "esophagus", "duodenum", "pancreas",
            "bile ducts", "small intestine", "gallbladder", "rectum", "stomach",
        ],
        "m": [
            "ulcer healing rate", "serum bilirubin", "transaminase levels", "gastric acid output",
            "stool frequency", "Helicobacter pylori status", "endoscopic relapse", "serum amylase",
            "hepatic fibrosis score",
        ],
    },
    "nervous system diseases": {
        "d": [
            "epilepsy", "multiple sclerosis", "Parkinson disease", "Alzheimer disease",
            "migraine", "ischemic stroke", "peripheral neuropathy", "myasthenia gravis",
            "amyotrophic lateral sclerosis", "cerebral palsy", "subarachnoid hemorrhage",
            "bacterial meningitis", "dementia", "Guillain-Barre syndrome", "spinal cord injury",
            "head injury", "hydrocephalus", "Huntington disease", "encephalitis",
            "status epilepticus", "trigeminal neuralgia",
        ],
        "t": [
            "carbamazepine", "levodopa", "phenytoin", "valproate", "sumatriptan",
            "interferon beta", "baclofen", "phenobarbital", "tacrine", "nimodipine",
            "selegiline", "botulinum toxin", "gabapentin", "dopamine agonists", "plasma exchange",
        ],
        "p": [
            "electroencephalography", "magnetic resonance imaging of the brain",
            "lumbar puncture", "nerve conduction studies", "electromyography",
            "neuropsychological testing", "craniotomy", "evoked potentials",
            "cerebrospinal fluid analysis", "stereotactic surgery", "transcranial Doppler",
        ],
        "a": [
            "cerebral cortex", "spinal cord", "basal ganglia", "peripheral nerves",
            "hippocampus", "brainstem", "white matter", "cerebellum", "motor neurons",
        ],
        "m": [
            "seizure frequency", "Glasgow Coma Scale", "Mini-Mental State score",
            "disability score", "nerve conduction velocity", "cognitive performance",
            "motor function", "relapse rate", "headache days",
        ],
    },
    "cardiovascular diseases": {
        "d": [
            "acute myocardial infarction", "coronary artery disease", "congestive heart failure",
            "essential hypertension", "atrial fibrillation", "unstable angina",
            "aortic stenosis", "dilated cardiomyopathy", "ventricular tachycardia",
            "deep venous thrombosis", "pulmonary embolism", "atherosclerosis",
            "mitral regurgitation", "aortic aneurysm", "peripheral arterial disease",
            "hypertrophic cardiomyopathy", "infective endocarditis", "cardiac arrest",
            "left ventricular hypertrophy", "restenosis",
        ],
        "t": [
            "captopril", "enalapril", "metoprolol", "atenolol", "digoxin", "warfarin",
            "heparin", "streptokinase", "tissue plasminogen activator", "nifedipine",
            "verapamil", "aspirin", "amiodarone", "diltiazem", "nitroglycerin", "furosemide",
            "thrombolytic therapy", "lovastatin",
        ],
        "p": [
            "coronary angioplasty", "echocardiography", "cardiac catheterization",
            "coronary artery bypass grafting", "exercise testing", "Holter monitoring",
            "coronary angiography", "valve replacement", "radionuclide ventriculography",
            "pacemaker implantation", "electrocardiography",
        ],
        "a": [
            "left ventricle", "coronary arteries", "myocardium", "aorta", "mitral valve",
            "right atrium", "carotid artery", "venous system", "cardiac muscle",
        ],
        "m": [
            "ejection fraction", "systolic blood pressure", "diastolic blood pressure",
            "heart rate", "infarct size", "cardiac output", "exercise duration",
            "serum cholesterol", "reinfarction rate",
        ],
    },
    "general pathological conditions": {
        "d": [
            "sepsis", "septic shock", "chronic inflammation", "obesity", "hypoxia",
            "fever of unknown origin", "systemic lupus erythematosus", "rheumatoid arthritis",
            "tissue necrosis", "edema", "chronic pain", "multiple organ failure", "amyloidosis",
            "wound infection", "burn injury", "iron deficiency", "dehydration", "vasculitis",
            "sarcoidosis", "postoperative complications", "autoimmune disease", "fibrosis",
            "HIV infection", "malnutrition", "hypothermia", "trauma",
        ],
        "t": [
            "corticosteroids", "prednisone", "broad-spectrum antibiotics", "cyclosporine",
            "intravenous fluids", "nonsteroidal anti-inflammatory drugs", "morphine",
            "gentamicin", "vancomycin", "immunoglobulin", "zidovudine", "oxygen therapy",
            "nutritional support", "dexamethasone", "ibuprofen", "azathioprine",
        ],
        "p": [
            "blood cultures", "skin testing", "mechanical ventilation", "wound debridement",
            "serologic testing", "intensive care monitoring", "tissue biopsy",
            "radiographic examination", "physical examination", "autopsy",
        ],
        "a": [
            "serum", "plasma", "connective tissue", "skin", "muscle tissue", "joints",
            "lymphocytes", "macrophages", "soft tissues", "blood vessels",
        ],
        "m": [
            "C-reactive protein", "white blood cell count", "body temperature",
            "erythrocyte sedimentation rate", "body mass index", "cytokine levels",
            "pain score", "antibody titers", "length of stay",
        ],
    },
}

# Shared by every class: the words that make documents look alike.
GENERIC: dict[str, list[str]] = {
    "d": [
        "the disease", "this condition", "the disorder", "chronic disease", "the syndrome",
        "complications", "infection", "recurrent disease", "the lesion", "the illness",
    ],
    "t": [
        "placebo", "standard therapy", "the drug", "supportive care", "the treatment",
        "conservative management", "surgery", "combination therapy", "long-term therapy",
    ],
    "p": [
        "computed tomography", "ultrasonography", "biopsy", "magnetic resonance imaging",
        "clinical examination", "laboratory testing", "follow-up visits", "surgical treatment",
    ],
    "a": ["blood", "tissue", "cells", "serum samples", "specimens", "organs"],
    "m": [
        "mortality", "morbidity", "complication rate", "quality of life", "response rate",
        "survival", "recurrence", "hospital stay", "adverse events",
    ],
}

POPULATIONS = [
    "patients", "adults", "children", "elderly patients", "consecutive patients",
    "healthy volunteers", "outpatients", "women", "men", "infants", "hospitalized patients",
]
OUTCOMES = [
    "a significant improvement", "no significant difference", "a lower incidence of relapse",
    "a marked reduction", "a higher rate of complications", "comparable results",
    "a favorable outcome", "a poorer prognosis", "a transient benefit", "a sustained response",
]
DESIGNS = [
    "a randomized controlled trial", "a prospective study", "a retrospective review",
    "a double-blind crossover study", "a case-control study", "a cohort study",
    "a multicenter trial", "a cross-sectional survey", "a case series",
]

TITLES = [
    "{d}: {p} in {g}",
    "Effect of {t} on {m} in {d}",
    "{t} versus {t2} for {d}",
    "Long-term results of {p} in {g} with {d}",
    "{m} after {p}",
    "Role of {p} in the diagnosis of {d}",
    "{d} in {g}: clinical features and outcome",
    "Treatment of {d} with {t}",
    "Changes in {a} in {d}",
    "Prognostic value of {m} in {d}",
]

BACKGROUND = [
    "{d} remains a major cause of {m_g} in {g}.",
    "The optimal management of {d} is still debated.",
    "Little is known about the relation between {m} and {d}.",
    "Previous reports suggested that {t} may improve {m} in {d}.",
    "The aim of this study was to evaluate {p} in {g} with {d}.",
    "We investigated whether {t} alters {m} in {g}.",
    "{d} is frequently associated with changes in the {a}.",
    "The role of {p} in {d} has not been clearly defined.",
    "This report describes our experience with {t} in {n} {g}.",
    "Controversy persists regarding the value of {p} for {d}.",
]

METHODS = [
    "We studied {n} {g} with {d} in {des}.",
    "{n} {g} were randomly assigned to {t} or {t2}.",
    "All {g} underwent {p} before and after treatment.",
    "{m} was measured at baseline and after {y} years of follow-up.",
    "Samples of {a} were obtained by {p} and examined.",
    "The records of {n} {g} treated for {d} between {yr} and {yr2} were reviewed.",
    "{g} received {t} for a median of {y} months.",
    "Outcomes were assessed by {p} and by {m}.",
    "{des} was conducted in {n} {g} with {d}.",
    "{m} and {m2} were compared between groups.",
]

RESULTS = [
    "{m} improved in {pct}% of {g} receiving {t} ({pv}).",
    "{t} produced {o} in {m} compared with {t2}.",
    "{p} revealed abnormalities of the {a} in {n} of {n2} cases.",
    "There was {o} in {m} between the two groups ({pv}).",
    "{d} was detected in {pct}% of {g}.",
    "The mean {m} was {x} in the treated group and {x2} in controls.",
    "{m} correlated with {m2} in {g} with {d} ({pv}).",
    "Adverse effects of {t} occurred in {n} {g}.",
    "After {y} years, {pct}% of {g} were free of {d}.",
    "{p} showed {o} in {n2} {g}.",
    "Involvement of the {a} was associated with {m_g}.",
    "Multivariate analysis identified {m} as an independent predictor of {m_g}.",
]

CONCLUSIONS = [
    "{t} is a safe and effective treatment for {d}.",
    "These findings suggest that {p} should be considered in {g} with {d}.",
    "{m} may be a useful marker of {d}.",
    "Further studies are needed to define the role of {t} in {d}.",
    "Our results support the use of {p} in the evaluation of the {a}.",
    "Early {p} improves {m} in {g}.",
    "{d} should be considered in {g} presenting with abnormal {m}.",
    "{t} did not offer an advantage over {t2} in {d}.",
]

# Sentences with only generic words: common to all classes.
FILLER = [
    "The study was approved by the local ethics committee.",
    "Informed consent was obtained from all participants.",
    "Statistical analysis was performed with standard methods.",
    "Data were analysed on an intention-to-treat basis.",
    "Baseline characteristics were similar in both groups.",
    "Follow-up was complete in most cases.",
    "The results are discussed in the light of previous studies.",
    "Possible mechanisms are discussed.",
]
# fmt: on
